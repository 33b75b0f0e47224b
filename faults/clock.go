package faults

import "time"

// Clock is the source of time for everything in stunfault that waits or
// expires: rule lifetimes (for), delays, rate limits, webhook latency and
// windows, REST credential expiry. Tests inject a fake one to move time
// forward without sleeping. Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed and returns a
	// Timer that can cancel the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled with Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call. It reports whether the call was still pending.
	Stop() bool
}

// SystemClock is the real wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
