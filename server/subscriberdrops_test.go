package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// gateWriter is a capture's output that blocks its second write (the first
// packets) until gate closes, and tells the test after every write.
type gateWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	blocked chan struct{} // closed when the second write blocks
	gate    chan struct{}
	wrote   chan struct{} // one token per write, dropped when full
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	second := w.writes == 2
	w.mu.Unlock()
	if second {
		close(w.blocked)
		<-w.gate
	}
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *gateWriter) contains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.buf.Bytes(), []byte(s))
}

// messages counts the trace messages the capture wrote: the distinct
// "trace #N:" of its comments (an injected error is one message, written
// as two packets).
func (w *gateWriter) messages() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`trace #[0-9]+:`).FindAll(w.buf.Bytes(), -1) {
		seen[string(m)] = true
	}
	return len(seen)
}

// stunfault_subscriber_events_lost_total counts what every bounded
// subscriber queue dropped, by kind: a journal subscription that is not
// read, a live capture that writes too slowly for the trace, and a GET
// /trace follower that asks too seldom.
func TestMetricsSubscriberDrops(t *testing.T) {
	cfg := testConfig()
	cfg.Server.TraceSize = 16
	cfg.Rules = []faults.Rule{{
		ID: "403-binding", Match: faults.Match{Methods: []string{"binding"}},
		Action: faults.Action{Type: "error", Code: 403},
	}}
	srv := startServer(t, &cfg)
	sub := srv.Faults().Subscribe(1, faults.Query{}) // never read: room for one event
	defer sub.Close()

	conn, err := net.Dial("udp4", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	binding := func() { // one request, no retransmission: two messages
		t.Helper()
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		if _, err := conn.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(whWait))
		if _, err := conn.Read(make([]byte, 1500)); err != nil {
			t.Fatalf("no answer to the Binding: %v", err)
		}
	}

	w := &gateWriter{blocked: make(chan struct{}), gate: make(chan struct{}), wrote: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.WriteCapture(ctx, w, server.CaptureOptions{Duration: time.Minute}) }()
	<-w.wrote // the headers: the capture follows the trace from here
	binding()
	select {
	case <-w.blocked: // the capture is stuck writing the first packets
	case <-time.After(whWait):
		t.Fatal("the capture wrote no packets")
	}
	for range 20 { // 20 more messages (a request and its 403 are one) into a trace of 16
		binding()
	}
	last := srv.Trace().LastSeq()
	close(w.gate)
	deadline := time.After(whWait)
	for !w.contains(fmt.Sprintf("trace #%d:", last)) {
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("the capture did not catch up to trace #%d", last)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("WriteCapture: %v", err)
	}
	written := w.messages()
	// A GET /trace follower that last saw #1 (the dashboard polls since
	// its last seq): the ring of 16 holds the last 16 now. A read without
	// follow (a first load) loses nothing.
	getTrace(t, srv.HTTPURL(), 1)
	if p := getTracePath(t, srv.HTTPURL(), "/trace?since=1&follow=1"); len(p.Messages) != 16 || p.Messages[0].Seq != last-15 {
		t.Fatalf("GET /trace?since=1&follow=1: %+v, want the 16 messages from #%d", p.Messages, last-15)
	}

	fams := scrape(t, srv.HTTPURL())
	st, _ := srv.Faults().Get("403-binding")
	for _, tc := range []struct {
		subscriber string
		want       float64
	}{
		{"events", float64(st.Fired - 1)},         // one event fit
		{"capture", float64(int(last) - written)}, // every message is written or lost
		{"trace", float64(last - 15 - 2)},         // #2 to the first it got
	} {
		got, ok := value(fams, "stunfault_subscriber_events_lost_total", "subscriber="+tc.subscriber)
		if !ok || got != tc.want {
			t.Errorf("stunfault_subscriber_events_lost_total{subscriber=%q}: got %v (%v), want %v", tc.subscriber, got, ok, tc.want)
		}
	}
	if st.Fired != 21 {
		t.Errorf("the rule fired %d times, want 21", st.Fired)
	}
	if lost := int(last) - written; lost < 21-16-1 {
		t.Errorf("the capture wrote %d of %d messages: want at least %d lost to a trace of 16", written, last, 21-16-1)
	}
}

// Bad GET /trace parameters get 400 saying which and what was expected.
func TestTraceBadParameters(t *testing.T) {
	srv := startServer(t, nil)
	for _, tc := range []struct{ query, want string }{
		{"since=-1", "since: want a non-negative integer"},
		{"limit=10001", "limit: want an integer from 0 to 10000"},
		{"follow=yes", "follow: want 1"},
	} {
		res, err := http.Get(srv.HTTPURL() + "/trace?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(b), tc.want) {
			t.Errorf("%s: got %d %q, want 400 %q", tc.query, res.StatusCode, b, tc.want)
		}
	}
}
