package servertest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// startTimeout bounds Start: binding loopback sockets takes microseconds, so
// only a broken machine reaches it.
const startTimeout = 10 * time.Second

// Server is a started stunfault closed by the cleanup of the test that made
// it. It embeds *server.Server, so every method of a running server is
// there (ICEServers, Faults, Webhooks, ControlURL, HTTPURL,
// STUNAddr, TURNAddr, Credentials, ...). Its methods are safe for
// concurrent use.
type Server struct {
	*server.Server
}

// Option changes how New starts the server.
type Option func(*options)

type options struct {
	cfg        *config.Config
	logs       bool
	serverOpts []server.Option
}

// WithConfig starts the server from cfg instead of config.Default: build it
// from config.Default in Go, or read a TOML with config.Parse. Its addresses
// are moved to port 0 on their hosts (config.ListenOnFreePorts), so a config
// written for 127.0.0.1:3478 runs beside other tests. A config the server
// rejects fails the test. New uses a copy: changing cfg afterwards changes
// nothing.
func WithConfig(cfg config.Config) Option {
	return func(o *options) { c := cfg.Clone(); o.cfg = &c }
}

// WithLogs sends the server's logs (Debug and above, pion's included) to the
// test's log through tb.Logf, where `go test` shows them for a failed test
// or with -v. Logging stops when the test's cleanup closes the server:
// a record arriving after that is dropped, never written to a finished test.
func WithLogs() Option {
	return func(o *options) { o.logs = true }
}

// WithServerOptions passes opts to server.New after the ones New sets
// itself: server.WithClock(faults.NewManualClock(start)) to move time by
// hand, server.WithSeed for the same probabilistic decisions on every run
// (a server.WithLogger here replaces WithLogs).
func WithServerOptions(opts ...server.Option) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// New starts a stunfault for the test tb: the built-in default config (users
// user/pass, no rules) unless WithConfig says otherwise, with STUN/TURN over
// UDP and TCP on one free port of 127.0.0.1 and the HTTP side on another. Every socket is bound when New returns. It fails the test
// through tb.Fatalf when the config is wrong or a socket cannot be bound,
// and registers tb.Cleanup to close the server (a Close error fails the
// test).
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := config.Default()
	if o.cfg != nil {
		cfg = *o.cfg
	}
	if err := cfg.ListenOnFreePorts(); err != nil {
		tb.Fatalf("servertest: %v", err)
		return nil
	}

	var sopts []server.Option
	var tl *testLog
	if o.logs {
		tl = &testLog{tb: tb}
		sopts = append(sopts, server.WithLogger(slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	sopts = append(sopts, o.serverOpts...)

	srv, err := server.New(cfg, sopts...)
	if err != nil {
		tb.Fatalf("servertest: %v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		_ = srv.Close()
		tl.stop()
		tb.Fatalf("servertest: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		err := srv.Close()
		// Close has waited for every goroutine of the server; nothing
		// logs after it, and the flag makes sure of it.
		tl.stop()
		if err != nil {
			tb.Errorf("servertest: %v", err)
		}
	})
	return &Server{Server: srv}
}

// AddRule adds r to the server's rules for the rest of tb (the test that
// made the server or one of its subtests) and returns it as added (with its
// generated ID when r had none). tb's cleanup removes it again, unless it
// is already gone (removed, expired or replaced by a scenario switch). A
// rule the engine rejects fails tb.
//
// Adding a rule with the ID of an active one replaces that one, and the
// cleanup then removes it by that ID: give rules of concurrent subtests
// distinct IDs, or none.
func (s *Server) AddRule(tb testing.TB, r faults.Rule) faults.Rule {
	tb.Helper()
	ch, err := s.Faults().Add(r)
	if err != nil {
		tb.Fatalf("servertest: AddRule: %v", err)
		return faults.Rule{}
	}
	added := ch.Rules[0]
	tb.Cleanup(func() {
		if _, err := s.Faults().Remove(added.ID); err != nil && !errors.Is(err, faults.ErrNotFound) {
			tb.Errorf("servertest: removing the rule at cleanup: %v", err)
		}
	})
	return added
}

// testLog is the io.Writer under the slog handler of WithLogs. slog's
// handlers write each record with one Write call, so one Write is one
// tb.Logf line.
type testLog struct {
	mu      sync.Mutex
	tb      testing.TB
	stopped bool
}

// Write logs p through tb.Logf, or drops it once stop was called: a
// testing.T panics when it is logged to after its test has finished.
func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.tb.Logf("stunfault: %s", strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// stop makes every later Write a no-op. A nil testLog (no WithLogs) is fine.
func (l *testLog) stop() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}
