// Command screenpop reproduces stunfault's reference scenario: a
// contact-centre softphone whose ICE gathering fails with 403 from the STUN
// server only while a CRM screen-pop webhook carrying a ticket ID is being
// called.
//
// It starts an embedded stunfault from screenpop.toml on free loopback ports,
// then tells the story in five steps: for each, it makes the webhook calls a
// contact flow would make (real HTTP POSTs to /webhook/servicenow), gathers
// ICE candidates with a pion/webrtc peer connection standing in for the
// softphone while the calls are held open, and prints what was sent, what the
// softphone saw and which rule fired.
//
//	go run ./examples/screenpop                    # the embedded screenpop.toml
//	go run ./examples/screenpop -config FILE       # another config with the same scenarios
//	go run ./examples/screenpop -v                 # with stunfault's and pion's logs on stderr
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
	configPath := flag.String("config", "", "stunfault config `FILE` with the payload, header, load and blocking scenarios (default: the embedded screenpop.toml)")
	verbose := flag.Bool("v", false, "log stunfault's and pion's messages to stderr")
	flag.Parse()

	opts := options{config: defaultConfig, configName: "screenpop.toml"}
	if *configPath != "" {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "screenpop:", err)
			os.Exit(2)
		}
		opts.config, opts.configName = data, *configPath
	}
	if *verbose {
		opts.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	_, err := run(ctx, os.Stdout, opts)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
	case interrupted && errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "screenpop: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "screenpop:", err)
		os.Exit(1)
	}
}
