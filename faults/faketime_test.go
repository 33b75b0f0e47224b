package faults

import "time"

// newFakeClock returns a ManualClock at a fixed time, for tests of rule
// lifetimes and rate limits.
func newFakeClock() *ManualClock {
	return NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}
