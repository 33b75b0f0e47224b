// Command browser points a real browser at stunfault: it starts an embedded
// stunfault on free loopback ports and serves a page that runs an
// RTCPeerConnection against stunfault's ICE servers and shows, live, every
// candidate and every icecandidateerror (errorCode, errorText, url, address,
// port) the browser reports. The page also POSTs each of them back, and this
// program prints them, so the terminal shows what the browser saw.
//
//	go run ./examples/browser                                  # default config, no rules
//	go run ./examples/browser -config examples/screenpop/screenpop.toml -scenario payload
//
// Open the printed URL in Chromium or Firefox on the same machine. Change
// rules at runtime with the stunfault CLI against the printed control URL
// and press "Gather again". The page's query string picks the ICE servers:
// ?only=stun, ?only=turn-udp,turn-tcp, ?policy=relay.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	configPath := flag.String("config", "", "stunfault config `FILE` (default: the embedded default config, no rules)")
	scenario := flag.String("scenario", "", "activate scenario `NAME` of the config")
	addr := flag.String("addr", "127.0.0.1:0", "serve the page on `HOST:PORT` (port 0 = a free one)")
	verbose := flag.Bool("v", false, "log stunfault's and pion's messages to stderr")
	flag.Parse()

	opts := options{scenario: *scenario, addr: *addr}
	if *verbose {
		opts.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if *configPath != "" {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "browser:", err)
			os.Exit(2)
		}
		opts.config, opts.configName = data, *configPath
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, opts, nil)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "browser:", err)
		os.Exit(1)
	}
}
