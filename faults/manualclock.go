package faults

import (
	"context"
	"sync"
	"time"
)

// ManualClock is a [Clock] that moves only when told to: tests give it to a
// server (server.WithClock) to fast-forward delays, rule lifetimes, rate
// limits, webhook latency and windows instead of sleeping. It is safe for
// concurrent use.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*manualTimer
	changed chan struct{} // closed and replaced whenever a timer is armed or ends
}

type manualTimer struct {
	c       *ManualClock
	when    time.Time
	f       func()
	stopped bool
}

// NewManualClock returns a clock that reads start until it is advanced.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms a timer that calls f, in its own goroutine, once the clock
// has been advanced by d or more.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.notify()
	return t
}

// Advance moves the clock on by d, runs every timer that became due (each
// in its own goroutine, as time.AfterFunc does) and returns once they have
// all returned.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.when.After(c.now):
			t.stopped = true // fired: Stop now reports false
			due = append(due, t.f)
		default:
			kept = append(kept, t)
		}
	}
	clear(c.timers[len(kept):])
	c.timers = kept
	if len(due) > 0 {
		c.notify()
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range due {
		wg.Go(f)
	}
	wg.Wait()
}

// Pending returns how many timers are armed and have neither fired nor been
// stopped.
func (c *ManualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending()
}

// WaitPending blocks until at least n timers are pending, or ctx ends. A
// test uses it to know that the code under test has armed its timer (a
// webhook request is being held, a message is being delayed) before it
// advances the clock.
func (c *ManualClock) WaitPending(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, ch := c.pending(), c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *ManualClock) pending() int {
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// notify wakes WaitPending; c.mu must be held.
func (c *ManualClock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Stop cancels the timer; it reports whether the timer was still pending.
func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	if was {
		t.c.notify()
	}
	return was
}
