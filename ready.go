package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server"
)

// readyFlags are the flags of `stunfault serve` for programs that start
// stunfault as a child process (test fixtures in other languages, such as
// clients/js's startStunfault): -free-ports moves every address of the config
// to a free port, -ready-json announces the real ones as one JSON line, and
// -exit-with-stdin ties stunfault's life to its parent's (a killed parent
// closes the pipe).
type readyFlags struct {
	json      bool
	freePorts bool
	withStdin bool
}

// addReadyFlags registers -ready-json and -free-ports on fs.
func addReadyFlags(fs *flag.FlagSet) *readyFlags {
	r := &readyFlags{}
	fs.BoolVar(&r.json, "ready-json", false,
		"print one JSON line (addresses, control URL, HTTP URL, ICE servers) instead of the banner once every socket is bound")
	fs.BoolVar(&r.freePorts, "free-ports", false,
		"move every [[listen]] address and [http].address to port 0, keeping their hosts (read the real ports from the banner or -ready-json)")
	fs.BoolVar(&r.withStdin, "exit-with-stdin", false,
		"also shut down when stdin is closed: a parent that starts stunfault with a pipe on its stdin cannot leave it running")
	return r
}

// prepare applies -free-ports to cfg.
func (r *readyFlags) prepare(cfg *config.Config) error {
	if !r.freePorts {
		return nil
	}
	if err := cfg.ListenOnFreePorts(); err != nil {
		return inputErrorf("-free-ports: %v", err)
	}
	return nil
}

// Ready is the line `stunfault serve -ready-json` prints on stdout once
// every socket is bound: one JSON object, then a newline, and nothing else
// on stdout after it (logs go to stderr). Fields may be added; none is
// removed or renamed.
type Ready struct {
	// Ready is always true: a reader can tell the line from anything else.
	Ready   bool   `json:"ready"`
	Version string `json:"version"`
	// PID is the server's process id.
	PID  int    `json:"pid"`
	Seed uint64 `json:"seed"`
	// Listeners are the STUN/TURN sockets with their real ports, in config
	// order.
	Listeners []server.Listener `json:"listeners"`
	// HTTPURL is the base URL of the HTTP side (/healthz, /webhook/NAME,
	// /api/OP); ControlURL is its control WebSocket.
	HTTPURL    string `json:"http_url"`
	ControlURL string `json:"control_url"`
	// ICEServers are what a WebRTC client passes as RTCConfiguration's
	// iceServers: stun: and turn: URLs with credentials.
	ICEServers []server.ICEServer `json:"ice_servers"`
	// Scenario is the scenario active at start ("" when none).
	Scenario string `json:"scenario,omitempty"`
	// Rules is how many rules are active at start.
	Rules int `json:"rules"`
	// TokenRequired tells that [http].token is set: the control socket and
	// /api need it.
	TokenRequired bool `json:"token_required,omitempty"`
}

// announce tells where to point clients once every socket is bound: the
// human banner, or with -ready-json the Ready line.
func (r *readyFlags) announce(w io.Writer, srv *server.Server, source string) error {
	if !r.json {
		printBanner(w, srv, source)
		return nil
	}
	line, err := json.Marshal(readyLine(srv))
	if err != nil {
		return fmt.Errorf("-ready-json: %w", err)
	}
	if _, err := fmt.Fprintf(w, "%s\n", line); err != nil {
		return fmt.Errorf("-ready-json: writing the ready line: %w", err)
	}
	return nil
}

// readyLine describes a started srv.
func readyLine(srv *server.Server) Ready {
	ice := srv.ICEServers()
	if ice == nil {
		ice = []server.ICEServer{}
	}
	return Ready{
		Ready:         true,
		Version:       server.BuildVersion().Version,
		PID:           os.Getpid(),
		Seed:          srv.Seed(),
		Listeners:     srv.Listeners(),
		HTTPURL:       srv.HTTPURL(),
		ControlURL:    srv.ControlURL(),
		ICEServers:    ice,
		Scenario:      srv.Faults().Scenario(),
		Rules:         len(srv.Faults().List()),
		TokenRequired: srv.Config().HTTP.Token != "",
	}
}

// wait blocks until ctx ends or, with -exit-with-stdin, stdin reaches end of
// file (what is read is discarded, 32 KiB at a time).
func (r *readyFlags) wait(ctx context.Context, stdin io.Reader, logger *slog.Logger) {
	if !r.withStdin {
		<-ctx.Done()
		return
	}
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
		logger.Info("stdin closed")
	}
}
