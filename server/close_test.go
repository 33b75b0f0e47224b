package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// closeBound is how long a test lets Close take before it calls it hung.
// Close promises about a second; the margin is for a loaded machine.
const closeBound = 10 * time.Second

// startRaw starts a server on cfg without servertest, so the test decides
// when it closes.
func startRaw(t *testing.T, cfg config.Config) *server.Server {
	t.Helper()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv
}

// closeWithin closes srv and fails the test when that takes longer than
// bound. It returns how long Close took.
func closeWithin(t *testing.T, srv *server.Server, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(bound):
		t.Fatalf("Close did not return within %v", bound)
	}
	return time.Since(start)
}

// Control ops read the server (stats.get reads its listeners); Close waits
// for them. A client asking for stats in a loop while the server closes
// must not hang Close: it used to, within a few cycles.
func TestCloseDuringStatsLoop(t *testing.T) {
	t.Parallel()
	const cycles = 30
	for i := range cycles {
		srv := startRaw(t, testConfig())
		c, err := control.Dial(context.Background(), srv.ControlURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		running := make(chan struct{})
		var loops sync.WaitGroup
		loops.Add(2)
		go func() { // stats over the control socket
			defer loops.Done()
			for n := 0; ; n++ {
				if _, err := c.Stats(context.Background()); err != nil {
					return
				}
				if n == 0 {
					close(running)
				}
			}
		}()
		go func() { // and /healthz, which reads the listeners too
			defer loops.Done()
			for {
				resp, err := http.Get(srv.HTTPURL() + "/healthz")
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}()
		<-running
		closeWithin(t, srv, closeBound)
		loops.Wait()
		_ = c.Close()
		if t.Failed() {
			t.Fatalf("cycle %d of %d", i+1, cycles)
		}
	}
}

// rawTCP opens a TCP connection to addr, sends what, and leaves it so.
func rawTCP(t *testing.T, addr, what string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, what); err != nil {
		t.Fatal(err)
	}
}

// Close returns within about a second whatever the clients do: control
// clients that never read, HTTP clients stuck in their headers or body,
// TCP STUN clients stuck inside a frame. A client that still reads its
// control socket is told the server is going.
func TestCloseWithMisbehavingClients(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Webhooks = map[string]config.Webhook{"crm": {Mode: "sync", Status: 201, MaxBodyBytes: 1 << 20}}
	srv := startRaw(t, cfg)
	httpAddr := srv.HTTPAddr().String()
	const n = 20
	for range n {
		ws, resp, err := websocket.DefaultDialer.Dial(srv.ControlURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		t.Cleanup(func() { _ = ws.Close() })
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"rules.list"}`)); err != nil {
			t.Fatal(err)
		}
		rawTCP(t, httpAddr, "POST /webhook/crm HTTP/1.1\r\nHost: 127.0.0.1\r\n")
		rawTCP(t, httpAddr, "POST /webhook/crm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{\"ticket\"")
		// A STUN header announcing 1000 bytes of attributes, and 4 of them.
		rawTCP(t, turnAddr(t, srv, "tcp"), "\x00\x01\x03\xe8\x21\x12\xa4\x42abcdefghijkl\x00\x80\x00\x00")
	}
	ws, resp, err := websocket.DefaultDialer.Dial(srv.ControlURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"id": 1, "op": "hello"}); err != nil {
		t.Fatal(err)
	}
	var rep control.Reply
	if err := ws.ReadJSON(&rep); err != nil || !rep.OK {
		t.Fatalf("hello: %v %+v", err, rep)
	}

	took := closeWithin(t, srv, closeBound)
	t.Logf("Close with %d clients of each kind took %v", n, took)
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("reading control client: got %v, want close 1001 (going away)", err)
	}
}

// Webhook requests held for their latency are answered 503 when the server
// closes, not reset (with 200 of them, some used to see EOF), and Close does
// not wait for the latency.
func TestCloseAnswersHeldWebhook503(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Webhooks = map[string]config.Webhook{"crm": {
		Mode: "sync", Latency: faults.Duration(time.Hour), Status: 201, MaxBodyBytes: 1 << 20,
	}}
	srv := startRaw(t, cfg)
	type answer struct {
		status int
		body   string
		err    error
	}
	const held = 200
	answers := make(chan answer, held)
	client := &http.Client{Timeout: closeBound}
	for range held {
		go func() {
			resp, err := client.Post(srv.HTTPURL()+"/webhook/crm", "application/json", strings.NewReader(`{"ticket":1}`))
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			answers <- answer{status: resp.StatusCode, body: string(b), err: err}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeBound)
	defer cancel()
	hub := srv.Webhooks()
	if err := hub.Wait(ctx, func() bool { return hub.Inflight("crm") == held }); err != nil {
		t.Fatalf("waiting for %d held requests: %v", held, err)
	}

	took := closeWithin(t, srv, closeBound)
	t.Logf("Close with %d held requests took %v", held, took)
	for range held {
		a := <-answers
		if a.err != nil {
			t.Errorf("held request: %v, want a 503 answer", a.err)
			continue
		}
		var body struct{ Error string }
		_ = json.Unmarshal([]byte(a.body), &body)
		if a.status != http.StatusServiceUnavailable || body.Error != "webhook: closed" {
			t.Errorf("held request: got %d %q, want 503 with error \"webhook: closed\"", a.status, a.body)
		}
	}
}
