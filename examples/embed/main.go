// Command embed runs stunfault inside a Go program on free loopback ports,
// with one rule: the first Binding request gets 403 Forbidden. It prints
// the RTCIceServer JSON a WebRTC page would use and serves until Ctrl-C,
// then says how often the rule fired. The README's "Embedding in Go"
// snippet is quoted from run, and a test keeps the two the same.
//
//	go run ./examples/embed
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, logger); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run starts a server, adds the rule, prints the ICE servers, and serves
// until ctx ends.
func run(ctx context.Context, w io.Writer, logger *slog.Logger) error {
	cfg := config.Default()                         // or config.Load("stunfault.toml")
	if err := cfg.ListenOnFreePorts(); err != nil { // port 0 everywhere: never collides with a running stunfault
		return err
	}
	srv, err := server.New(cfg, server.WithLogger(logger)) // validates, binds nothing
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil { // binds every socket before it returns
		return err
	}
	defer srv.Close() // idempotent; within about a second; waits for every goroutine

	ch, err := srv.Faults().Add(faults.Rule{ // applies to the very next message
		ID:     "screenpop-403",
		Times:  1, // the first Binding only
		Match:  faults.Match{Methods: []string{"binding"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	})
	if err != nil {
		return err // a typo is refused here: match.methods[0]: unknown method "bindng"
	}
	// ch (a faults.Change) says what this call did: the revision it made, whether it replaced a rule.
	// AddAll, Update, Replace, Remove and Clear return one too, each atomic against every other writer.
	iceServers := srv.ICEServers() // stun:/turn: URLs with the real ports and credentials

	ice, err := json.MarshalIndent(map[string]any{"iceServers": iceServers}, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "rule %s added (revision %d): the first Binding gets 403 Forbidden\n", ch.Rules[0].ID, ch.Revision)
	fmt.Fprintf(w, "new RTCPeerConnection(%s)\n", ice)
	fmt.Fprintf(w, "health: %s/healthz\n", srv.HTTPURL())
	<-ctx.Done()

	n := srv.Faults().Journal().Count(faults.Query{Rule: "screenpop-403"})
	fmt.Fprintf(w, "Bindings answered 403 by screenpop-403: %d\n", n)
	return nil
}
