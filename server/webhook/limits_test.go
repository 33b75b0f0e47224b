package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/webhook"
)

// Held sync requests and pending async work are bounded over the whole
// Hub: beyond, a request gets 503 with Retry-After (the latency), and an
// ended one frees its place.
func TestHeldAndPendingBounds(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			clock := newFakeClock()
			hooks := map[string]config.Webhook{"a": servicenow(), "b": servicenow()}
			for name, w := range hooks {
				w.Mode, w.Latency = mode, faults.Duration(90*time.Second)
				hooks[name] = w
			}
			hub := webhook.New(hooks, webhook.Options{Clock: clock, MaxHeld: 2, MaxPending: 2})
			srv := httptest.NewServer(hub)
			t.Cleanup(srv.Close)
			t.Cleanup(hub.Close)
			f := &fixture{hub: hub, clock: clock, srv: srv}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			// Two requests, on two webhooks, take the two places.
			var held []<-chan response
			for _, name := range []string{"a", "b"} {
				if mode == "sync" {
					held = append(held, f.postAsync(ctx, name, ticketBody))
				} else if r := f.post(t, name, ticketBody); r.status != http.StatusAccepted {
					t.Fatalf("async request to %s: got %d %q, want 202", name, r.status, r.body)
				}
			}
			clock.waitArmed(t, 2) // both are held or pending now

			r := f.post(t, "a", ticketBody)
			want := "held already"
			if mode == "async" {
				want = "pending already"
			}
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "90" || !strings.Contains(r.body, want) {
				t.Fatalf("third request: got %d Retry-After %q %q, want 503 Retry-After 90 saying %q",
					r.status, r.header.Get("Retry-After"), r.body, want)
			}
			if n := hub.Stats()["a"].Requests; n != 2 {
				t.Errorf("webhook a recorded %d requests, want 2 (the refused one too)", n)
			}

			clock.Advance(90 * time.Second) // the two end
			for _, ch := range held {
				if r := <-ch; r.status != 201 {
					t.Errorf("held request: got %d %q, want 201", r.status, r.body)
				}
			}
			if err := hub.Wait(ctx, func() bool { return hub.Pending("a")+hub.Pending("b") == 0 }); err != nil {
				t.Fatal(err)
			}
			// Their places are free again.
			if mode == "sync" {
				ch := f.postAsync(ctx, "a", ticketBody)
				clock.waitArmed(t, 1)
				clock.Advance(90 * time.Second)
				if r := <-ch; r.status != 201 {
					t.Errorf("request after the others ended: got %d %q, want 201", r.status, r.body)
				}
			} else if r := f.post(t, "a", ticketBody); r.status != http.StatusAccepted {
				t.Errorf("request after the others ended: got %d %q, want 202", r.status, r.body)
			}
		})
	}
}
