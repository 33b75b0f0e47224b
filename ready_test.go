package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server/control"
)

// startReady runs `stunfault serve args...` in the background until the
// test ends and returns the ready line it printed, decoded, and every byte
// it wrote on stdout until then.
func startReady(t *testing.T, args ...string) (Ready, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), pw, &stderr)
		_ = pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve ended with %v, want nil", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		<-done
		t.Fatalf("serve ended before its ready line (%v); stdout %q; stderr:\n%s", err, line, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var r Ready
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return r, line
}

// bindingCode sends one Binding request to addr over UDP and returns the
// ERROR-CODE of the answer (0 for a success).
func bindingCode(t *testing.T, addr string) int {
	t.Helper()
	c, err := stun.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code := -1
	if err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
		if e.Error != nil {
			return
		}
		var ec stun.ErrorCodeAttribute
		if ec.GetFrom(e.Message) == nil {
			code = int(ec.Code)
		} else {
			code = 0
		}
	}); err != nil {
		t.Fatalf("Binding to %s: %v", addr, err)
	}
	return code
}

// `serve -ready-json -free-ports` prints one JSON line, instead of the
// banner, whose addresses are real and served: a Binding to the UDP
// listener, /healthz on the HTTP URL, hello on the control URL.
func TestServeReadyJSON(t *testing.T) {
	r, line := startReady(t, "-ready-json", "-free-ports", "-log-level", "warn")
	if !strings.HasPrefix(line, "{") || strings.Count(line, "\n") != 1 {
		t.Errorf("ready line %q: want one JSON object and a newline", line)
	}
	if !r.Ready || r.Version == "" || r.PID == 0 {
		t.Errorf("ready = %v, version %q, pid %d: want true, a version and a pid", r.Ready, r.Version, r.PID)
	}
	var udp string
	for _, l := range r.Listeners {
		if l.Addr.Port() == 0 || l.Addr.Port() == 3478 {
			t.Errorf("listener %s %s: want a free port (not 0, not the default 3478)", l.Transport, l.Addr)
		}
		if l.Transport == "udp" && udp == "" {
			udp = l.Addr.String()
		}
	}
	if len(r.Listeners) != 2 || udp == "" {
		t.Fatalf("listeners = %v, want the default udp and tcp ones", r.Listeners)
	}
	if len(r.ICEServers) != 2 || r.ICEServers[0].URLs[0] != "stun:"+udp || r.ICEServers[1].Username != "user" {
		t.Errorf("ice_servers = %+v, want stun:%s first and turn: URLs with user/pass", r.ICEServers, udp)
	}
	if code := bindingCode(t, udp); code != 0 {
		t.Errorf("Binding to %s: error %d, want a success", udp, code)
	}

	res, err := http.Get(r.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET %s/healthz: %s, want 200", r.HTTPURL, res.Status)
	}
	http.DefaultClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, r.ControlURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seed != uint64(r.Seed) {
		t.Errorf("hello seed %d, ready line seed %d: want the same", h.Seed, r.Seed)
	}
}

// The ready line names the scenario -scenario activated and counts its
// rules, which decide the very first Binding.
func TestServeReadyJSONScenario(t *testing.T) {
	cfgPath := writeFile(t, "scenario.toml", scenarioConfig)
	r, _ := startReady(t, "-config", cfgPath, "-scenario", "forbidden", "-ready-json", "-log-level", "warn")
	if r.Scenario != "forbidden" || r.Rules != 1 {
		t.Errorf("scenario %q, rules %d: want \"forbidden\", 1", r.Scenario, r.Rules)
	}
	var udp string
	for _, l := range r.Listeners {
		if l.Transport == "udp" {
			udp = l.Addr.String()
		}
	}
	if code := bindingCode(t, udp); code != 403 {
		t.Errorf("Binding under scenario forbidden: %d, want 403", code)
	}
}

// With -exit-with-stdin, serve shuts down cleanly once stdin is closed, as
// when the parent that started it dies: it does not outlive the pipe.
func TestServeExitWithStdin(t *testing.T) {
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		err := runIO(ctx, []string{"serve", "-ready-json", "-free-ports", "-exit-with-stdin", "-log-level", "info"}, stdinR, outW, &stderr)
		_ = outW.CloseWithError(io.EOF)
		done <- err
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		cancel()
		<-done
		t.Fatalf("no ready line (%v); stderr:\n%s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	var r Ready
	if err := json.Unmarshal([]byte(line), &r); err != nil || !r.Ready {
		t.Fatalf("ready line %q: %v", line, err)
	}
	if _, err := stdinW.Write([]byte("anything written is ignored\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("serve ended (%v) while stdin was still open", err)
	default:
	}
	_ = stdinW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after stdin closed: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("serve still running 10 s after stdin was closed")
	}
	if !strings.Contains(stderr.String(), "stdin closed") {
		t.Errorf("stderr does not say why it shut down:\n%s", stderr.String())
	}
	// Its sockets are released: the UDP port can be bound again.
	pc, err := net.ListenPacket("udp", r.Listeners[0].Addr.String())
	if err != nil {
		t.Fatalf("after shutdown, binding %s: %v (want the port free)", r.Listeners[0].Addr, err)
	}
	_ = pc.Close()
}
