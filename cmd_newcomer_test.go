package main

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/servertest"
)

// Counts read as English: 1 rule, 1 entry, 1 error.
func TestPlurals(t *testing.T) {
	srv := servertest.New(t)
	ctl := srv.ControlURL()
	r := runCLI(t, `{"id":"one","labels":{"t":"p"},"match":{"methods":["binding"]},"action":{"type":"error","code":403}}`, "rules", "add", "-control", ctl, "-")
	if r.code != 0 {
		t.Fatal(r.text())
	}
	decideBinding(srv.Faults())
	if r := runCLI(t, "", "stats", "-control", ctl); !strings.Contains(r.stdout, "journal: 1 entry,") {
		t.Errorf("stats:\n%s", r.text())
	}
	if r := runCLI(t, "", "rules", "remove", "-label", "t=p", "-control", ctl); r.code != 0 || !strings.HasPrefix(r.stdout, "removed 1 rule (revision ") {
		t.Errorf("rules remove -label:\n%s", r.text())
	}
	if r := runCLI(t, "", "rules", "clear", "-control", ctl); r.code != 0 || !strings.HasPrefix(r.stdout, "removed 0 rules (revision ") {
		t.Errorf("rules clear:\n%s", r.text())
	}
	bad := writeFile(t, "one.toml", "[server]\nbogus = 1\n")
	if r := runCLI(t, "", "check", bad); r.code != 2 || !strings.Contains(r.text(), bad+": 1 error\n") {
		t.Errorf("check with one error:\n%s", r.text())
	}
}

// check - reads the config from stdin, as rules add - does.
func TestCheckStdin(t *testing.T) {
	if r := runCLI(t, portZeroConfig, "check", "-"); r.code != 0 || r.stdout != "<stdin>: OK\n" {
		t.Errorf("check - of a good config: exit %d\n%s", r.code, r.text())
	}
	r := runCLI(t, "[server]\nbogus = 1\n[relay]\nmin_port = 70000\n", "check", "-")
	if r.code != 2 || !strings.Contains(r.stdout, "<stdin>:2:") || !strings.Contains(r.stdout, "<stdin>:4:") || !strings.Contains(r.text(), "<stdin>: 2 errors") {
		t.Errorf("check - of a bad config: exit %d\n%s", r.code, r.text())
	}
}

// rules list shows what limits a rule: times, for, and its labels.
func TestRulesListShowsTimesForLabels(t *testing.T) {
	srv := servertest.New(t)
	srv.AddRule(t, faults.Rule{ID: "capped", Times: 3, For: faults.Duration(90 * time.Second), Labels: map[string]string{"test": "retry", "b": "2"},
		Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}})
	srv.AddRule(t, faults.Rule{ID: "plain", Action: faults.Action{Type: "drop"}})
	r := runCLI(t, "", "rules", "list", "-control", srv.ControlURL())
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("rules list: exit %d\n%s", r.code, r.text())
	}
	want := map[int][]string{
		0: {"ID", "TIMES", "FOR", "LABELS"},
		1: {"capped", " 3 ", " 1m30s ", " b=2,test=retry "},
		2: {"plain", " - ", " - "},
	}
	for i, ws := range want {
		for _, w := range ws {
			if !strings.Contains(lines[i], w) {
				t.Errorf("rules list line %d lacks %q:\n%s", i, w, r.stdout)
			}
		}
	}
}

// A webhook name the server does not have is a failure with the status.
func TestWebhookUnknownNameExitsOne(t *testing.T) {
	srv := servertest.New(t)
	addr := strings.TrimPrefix(srv.HTTPURL(), "http://")
	r := runCLI(t, "", "webhook", "-http", addr, "-name", "nope", "-n", "2")
	if r.code != 1 || !strings.Contains(r.text(), "404 Not Found") || !strings.Contains(r.stdout, "  404: 2") {
		t.Errorf("webhook -name nope: exit %d, want 1 with the status\n%s", r.code, r.text())
	}
	if r := runCLI(t, "", "webhook", "-http", addr, "-name", "servicenow", "-timeout", "40s"); r.code != 0 {
		t.Errorf("webhook -name servicenow: exit %d, want 0\n%s", r.code, r.text())
	}
}

// A malformed -control URL is the user's to fix (exit 2) for every command
// that dials.
func TestMalformedControlURLIsUsageError(t *testing.T) {
	for _, u := range []string{"127.0.0.1:8478", "ftp://127.0.0.1/control", "ws://", "ws://[::1/control", "%zz"} {
		for _, cmd := range [][]string{{"rules", "list"}, {"stats"}, {"events"}, {"journal"}, {"scenario"}} {
			r := runCLI(t, "", append(cmd, "-control", u)...)
			if r.code != 2 || !strings.Contains(r.text(), "-control") {
				t.Errorf("%v -control %q: exit %d, want 2 naming -control\n%s", cmd, u, r.code, r.text())
			}
		}
	}
}

// A server with a token: a 401 says how to pass it; -token and
// STUNFAULT_TOKEN both work.
func TestControlTokenHint(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.Token = "s3cret"
	srv := servertest.New(t, servertest.WithConfig(cfg))
	ctl := srv.ControlURL()
	t.Setenv("STUNFAULT_TOKEN", "")
	r := runCLI(t, "", "stats", "-control", ctl)
	if r.code != 2 || !strings.Contains(r.text(), "-token TOKEN") || !strings.Contains(r.text(), "STUNFAULT_TOKEN") {
		t.Errorf("stats without a token: exit %d, want 2 naming -token and STUNFAULT_TOKEN\n%s", r.code, r.text())
	}
	if r := runCLI(t, "", "stats", "-control", ctl, "-token", "s3cret"); r.code != 0 {
		t.Errorf("stats -token: exit %d\n%s", r.code, r.text())
	}
	t.Setenv("STUNFAULT_TOKEN", "s3cret")
	if r := runCLI(t, "", "stats", "-control", ctl); r.code != 0 {
		t.Errorf("stats with STUNFAULT_TOKEN: exit %d\n%s", r.code, r.text())
	}
	if r := runCLI(t, "", "stats", "-h"); strings.Contains(r.stdout, "s3cret") {
		t.Errorf("stats -h prints the token from the environment:\n%s", r.stdout)
	}
}

// lineWriter hands each line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   string
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf += string(p)
	for {
		i := strings.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- w.buf[:i]
		w.buf = w.buf[i+1:]
	}
}

// startOn starts a stunfault whose HTTP side listens on httpAddr, with a
// rule that makes every Binding a 403.
func startOn(t *testing.T, httpAddr string, seed uint64) *server.Server {
	t.Helper()
	cfg := config.Default()
	if err := cfg.ListenOnFreePorts(); err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Address = httpAddr
	srv, err := server.New(cfg, server.WithSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Faults().Add(faults.Rule{ID: "b403", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403}}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// events -follow survives a server restart: it reconnects, sees that the
// sequence numbers started again, and prints the new server's events.
func TestEventsFollowReconnectsAfterRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close() // the two servers take turns on this port
	first := startOn(t, httpAddr, 1)
	defer first.Close()
	decideBinding(first.Faults())

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := &lineWriter{lines: make(chan string, 16)}
	errOut := &lineWriter{lines: make(chan string, 64)}
	done := make(chan error, 1)
	go func() {
		done <- runIO(ctx, []string{"events", "-follow", "-since", "0", "-n", "4", "-control", "ws://" + httpAddr + "/control"}, nil, out, errOut)
	}()
	next := func(w *lineWriter, what string) string {
		t.Helper()
		select {
		case l := <-w.lines:
			return l
		case <-ctx.Done():
			t.Fatalf("no %s line", what)
			return ""
		}
	}
	if l := next(out, "first event"); !strings.HasPrefix(l, "#1 ") || !strings.Contains(l, "b403") {
		t.Fatalf("first event %q", l)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if l := next(errOut, "reconnecting"); !strings.Contains(l, "reconnecting") {
		t.Errorf("stderr %q, want it to say it reconnects", l)
	}
	second := startOn(t, httpAddr, 2)
	defer second.Close()
	decideBinding(second.Faults())
	decideBinding(second.Faults())
	for _, want := range []string{"#1 ", "#2 "} {
		if l := next(out, "event after the restart"); !strings.HasPrefix(l, want) {
			t.Errorf("after the restart: %q, want %s...", l, want)
		}
	}
	// And again: every time the server goes away, not only the first.
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	third := startOn(t, httpAddr, 3)
	defer third.Close()
	decideBinding(third.Faults())
	if l := next(out, "event after the second restart"); !strings.HasPrefix(l, "#1 ") {
		t.Errorf("after the second restart: %q, want #1 ...", l)
	}
	if err := <-done; err != nil {
		t.Errorf("events -follow -n 4: %v, want nil after 4 events", err)
	}
	close(errOut.lines)
	var stderr []string
	for l := range errOut.lines {
		stderr = append(stderr, l)
	}
	if s := strings.Join(stderr, "\n"); !strings.Contains(s, "restarted") || !strings.Contains(s, "reconnected") {
		t.Errorf("stderr after the restart:\n%s\nwant it to say the server restarted and it reconnected", s)
	}
}

// Without -follow, events ends with status 1 when the server goes away.
func TestEventsWithoutFollowEndsWithTheServer(t *testing.T) {
	srv := servertest.New(t)
	srv.AddRule(t, faults.Rule{ID: "b403", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403}})
	decideBinding(srv.Faults())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runIO(t.Context(), []string{"events", "-since", "0", "-control", srv.ControlURL()}, nil, pw, io.Discard)
		pw.Close()
	}()
	buf := make([]byte, 256)
	if _, err := pr.Read(buf); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; exitCode(err) != 1 {
		t.Errorf("events after the server closed: %v (status %d), want status 1", err, exitCode(err))
	}
}
