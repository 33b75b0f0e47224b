package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/webhook"
)

// Options.Observe hears of every request once, as it ends, with how long
// it took on the Hub's clock: also the requests that have already left a
// history too short to hold them all (what /metrics' histogram is fed
// by, so nothing is missed between two scrapes).
func TestObserveEveryEndedRequest(t *testing.T) {
	clock := newFakeClock()
	var mu sync.Mutex
	took := map[string][]time.Duration{}
	hub := webhook.New(map[string]config.Webhook{
		"fast": {Mode: "async", Status: 202},
		"slow": {Mode: "async", Latency: faults.Duration(2 * time.Second)},
		"held": {Mode: "sync", Latency: faults.Duration(3 * time.Second), Status: 201},
	}, webhook.Options{Clock: clock, Seed: 1, History: 2, Observe: func(name string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		took[name] = append(took[name], d)
	}})
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close)
	f := &fixture{hub: hub, clock: clock, srv: srv}

	for range 5 {
		if r := f.do(context.Background(), http.MethodPost, "fast", ticketBody); r.status != http.StatusAccepted {
			t.Fatalf("fast: got %d %v, want 202", r.status, r.err)
		}
	}
	for range 3 {
		if r := f.do(context.Background(), http.MethodPost, "slow", ticketBody); r.status != http.StatusAccepted {
			t.Fatalf("slow: got %d %v, want 202", r.status, r.err)
		}
	}
	held := make(chan response, 1)
	go func() { held <- f.do(context.Background(), http.MethodPost, "held", ticketBody) }()
	clock.waitArmed(t, 4) // three async works and the held request
	mu.Lock()
	if n := len(took["slow"]) + len(took["held"]); n != 0 {
		t.Errorf("%d observations before the latency passed, want none", n)
	}
	mu.Unlock()
	clock.Advance(3 * time.Second)
	if r := <-held; r.status != 201 {
		t.Fatalf("held: got %d %v, want 201", r.status, r.err)
	}

	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string][]time.Duration{
		"fast": {0, 0, 0, 0, 0},
		"slow": {3 * time.Second, 3 * time.Second, 3 * time.Second}, // the clock jumped 3 s past their start
		"held": {3 * time.Second},
	} {
		got := took[name]
		if len(got) != len(want) {
			t.Errorf("%s: %d observations %v, want %d (the history holds 2)", name, len(got), got, len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s #%d: took %v, want %v", name, i, got[i], want[i])
			}
		}
	}
}
