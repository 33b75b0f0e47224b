package webhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// fakeClock is the manual clock the Hub tests use: it moves only when
// advanced, and tells waiters when the Hub arms a latency timer, so tests
// synchronise on that instead of sleeping.
type fakeClock struct{ *faults.ManualClock }

func newFakeClock() *fakeClock {
	return &fakeClock{faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

// armed returns how many timers are waiting to fire.
func (c *fakeClock) armed() int { return c.Pending() }

// waitArmed blocks until at least n timers are waiting to fire, failing the
// test after 10 seconds.
func (c *fakeClock) waitArmed(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitPending(ctx, n); err != nil {
		t.Fatalf("waiting for %d armed timers: have %d after 10s", n, c.Pending())
	}
}
