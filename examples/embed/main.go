// Command embed runs stunfault inside a Go program on free loopback ports
// and prints the RTCIceServer JSON a WebRTC page would use, until Ctrl-C.
//
//	go run ./examples/embed
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run starts a server, prints its ICE servers, and serves until ctx ends.
func run(ctx context.Context, w io.Writer) error {
	cfg := config.Default()
	// Free ports instead of 3478/8478, so this runs beside anything else.
	if err := cfg.ListenOnFreePorts(); err != nil {
		return err
	}

	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()

	ice, err := json.MarshalIndent(map[string]any{"iceServers": srv.ICEServers()}, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "new RTCPeerConnection(%s)\n", ice)
	fmt.Fprintf(w, "health: %s/healthz\n", srv.HTTPURL())
	<-ctx.Done()
	return nil
}
