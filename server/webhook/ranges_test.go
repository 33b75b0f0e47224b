package webhook_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/webhook"
)

// webhook.set holds its values to the config's ranges, with the same words.
func TestSetRanges(t *testing.T) {
	f := newFixture(t, map[string]config.Webhook{"servicenow": servicenow()})
	dur := func(s string) *faults.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		fd := faults.Duration(d)
		return &fd
	}
	num := func(n int) *int { return &n }
	tests := []struct {
		name string
		s    webhook.Settings
		want string
	}{
		{"latency over 1h", webhook.Settings{Latency: dur("1h0m0.000000001s")}, `webhook "servicenow": latency: must be between 0s and 1h0m0s, got 1h0m0.000000001s`},
		{"negative latency", webhook.Settings{Latency: dur("-1s")}, `webhook "servicenow": latency: must be between 0s and 1h0m0s, got -1s`},
		{"huge jitter", webhook.Settings{Jitter: dur("1281024h")}, `webhook "servicenow": jitter: must be between 0s and 1h0m0s, got 1281024h0m0s`},
		{"1xx status", webhook.Settings{Status: num(150)}, `webhook "servicenow": status: must be between 200 and 599, got 150`},
		{"status 600", webhook.Settings{Status: num(600)}, `webhook "servicenow": status: must be between 200 and 599, got 600`},
		{"synthetic", webhook.Settings{SyntheticPending: num(-1)}, `webhook "servicenow": synthetic_pending: must be between 0 and 1000000, got -1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.hub.Set("servicenow", tt.s)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Set: %v, want %q", err, tt.want)
			}
		})
	}
	// The largest accepted values are accepted.
	if err := f.hub.Set("servicenow", webhook.Settings{Latency: dur("1h"), Jitter: dur("1h"), Status: num(599)}); err != nil {
		t.Fatalf("Set(1h, 1h, 599): %v", err)
	}
}

// A Hub built in Go is not validated: even the largest durations must not
// overflow or panic when a request draws its latency.
func TestHugeLatencyAndJitterDoNotPanic(t *testing.T) {
	hook := servicenow()
	hook.Latency = faults.Duration(math.MaxInt64)
	hook.Jitter = faults.Duration(math.MaxInt64)
	async := hook
	async.Mode = "async"
	f := newFixture(t, map[string]config.Webhook{"sync": hook, "async": async})

	if r := f.post(t, "async", ticketBody); r.status != http.StatusAccepted {
		t.Fatalf("async: status %d, want 202", r.status)
	}
	ch := f.postAsync(context.Background(), "sync", ticketBody)
	f.clock.waitArmed(t, 2) // the async work and the held request
	notYet(t, ch)
	f.hub.Close() // releases the held request with 503
	if r := receive(t, ch); r.status != http.StatusServiceUnavailable {
		t.Fatalf("sync: status %d (%v), want 503 after Close", r.status, r.err)
	}
}
