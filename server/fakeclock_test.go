package server_test

import (
	"time"

	"github.com/stunfault/stunfault/faults"
)

// fakeClock is the manual clock the server tests hand to server.WithClock,
// so rate limits, rule lifetimes and webhook latency move without waiting.
type fakeClock = faults.ManualClock

func newFakeClock() *fakeClock {
	return faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}
