package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server/control"
)

// childEnv names the config a re-executed test binary serves, as the real
// command does (signals included), when TestServeChild runs in it.
const childEnv = "STUNFAULT_TEST_SERVE_CONFIG"

// TestServeChild is not a test: in a child started by a test it is the
// stunfault command, `stunfault serve -free-ports -ready-json -config
// FILE`, and exits as main does.
func TestServeChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as the child of a signal test")
	}
	if n, err := strconv.ParseUint(os.Getenv(childNofileEnv), 10, 64); err == nil {
		lim := syscall.Rlimit{Cur: n, Max: n}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	os.Args = []string{"stunfault", "serve", "-free-ports", "-ready-json", "-config", path}
	main()
}

// childNofileEnv, when set, is the child's limit of open files.
const childNofileEnv = "STUNFAULT_TEST_NOFILE"

// startChild runs `stunfault serve` on config in a child process with env
// added, and returns its ready line and a channel that yields its exit.
func startChild(t *testing.T, config string, env ...string) (Ready, *exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$")
	// GORACE: under -race a process sleeps a second on exit by default.
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + config, "GORACE=atexit_sleep_ms=0"}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		go func() { exited <- cmd.Wait() }()
		t.Fatal("the child printed no ready line")
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	var ready Ready
	if err := json.Unmarshal(lines.Bytes(), &ready); err != nil {
		t.Fatalf("ready line %q: %v", lines.Text(), err)
	}
	return ready, cmd, exited
}

// SIGTERM closes the server within about a second whatever its clients do,
// and webhook requests held for their latency are answered 503, not reset.
func TestSIGTERMAnswersHeldWebhooksAndExits(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "held.toml", portZeroConfig+`
[webhooks.crm]
mode = "sync"
latency = "1h"
status = 201
`)
	ready, cmd, exited := startChild(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A control client that never reads, beside one that watches.
	idle, resp, err := websocket.DefaultDialer.DialContext(ctx, ready.ControlURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer idle.Close()
	c, err := control.Dial(ctx, ready.ControlURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const held = 100
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, held)
	client := &http.Client{Timeout: 10 * time.Second}
	for range held {
		go func() {
			resp, err := client.Post(ready.HTTPURL+"/webhook/crm", "application/json", strings.NewReader(`{"ticket":1}`))
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			answers <- answer{status: resp.StatusCode, body: string(b), err: err}
		}()
	}
	// Each stats reply is a fresh reading of the held count.
	for {
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatalf("waiting for %d held requests: %v", held, err)
		}
		if st.Webhooks["crm"].Inflight == held {
			break
		}
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("after SIGTERM the command ended with %v, want exit status 0", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not exit within 10s of SIGTERM")
	}
	for range held {
		a := <-answers
		if a.err != nil {
			t.Errorf("held request: %v, want a 503 answer", a.err)
			continue
		}
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "webhook: closed") {
			t.Errorf("held request: got %d %q, want 503 webhook: closed", a.status, a.body)
		}
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Error("the control client was not disconnected")
	}
}

// Out of file descriptors, a TCP listener keeps accepting once some are
// free again (pion's accept loop used to end at the first EMFILE, for
// good, while /healthz said ok).
func TestTCPListenerSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "emfile.toml", portZeroConfig)
	ready, _, _ := startChild(t, cfg, childNofileEnv+"=64")
	var tcpAddr string
	for _, l := range ready.Listeners {
		if l.Transport == "tcp" {
			tcpAddr = l.Addr.String()
		}
	}
	// More connections than the child has descriptors: the kernel takes
	// them all, the child's accept fails with EMFILE from some point on.
	var conns []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Once they are closed, the child has descriptors again: a new
	// connection is accepted and answered.
	for _, c := range conns {
		_ = c.Close()
	}
	c, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("Binding over TCP after EMFILE: %v (the listener died)", err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil || res.Type != stun.BindingSuccess {
		t.Fatalf("Binding over TCP after EMFILE: got %v %v, want a success", res.Type, err)
	}
	resp, err := http.Get(ready.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after EMFILE: %d, want 200", resp.StatusCode)
	}
}
