package webhook

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// config returns the webhook's current settings.
func (hk *hook) config() config.Webhook {
	hk.mu.RLock()
	defer hk.mu.RUnlock()
	return hk.cfg
}

// take spends a rate-limit token at now.
func (hk *hook) take(now time.Time) (bool, time.Duration) {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	return hk.bucket.take(now)
}

// begin records e as held now (sync): it counts in Inflight and Pending
// until finish. It reports false, recording nothing, once the Hub is closed.
func (hk *hook) begin(h *Hub, e *entry) bool {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if h.closed.Load() {
		return false
	}
	hk.activate(e)
	hk.inflight.Add(1)
	hk.changes.notify()
	return true
}

// beginAsync records e as answered 202 with its work pending for delay: it
// counts in Pending until its timer (or Close) finishes it. It reports false,
// recording nothing, once the Hub is closed.
func (hk *hook) beginAsync(h *Hub, e *entry, delay time.Duration) bool {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if h.closed.Load() {
		return false
	}
	hk.statuses[http.StatusAccepted]++
	if delay <= 0 {
		hk.requests++
		hk.records.push(e)
		hk.end(h.clock, e)
		hk.load.pending.release() // nothing is pending
		return true
	}
	hk.activate(e)
	// The timer is set under the lock, so Close, which takes it, either
	// sees e with its timer or runs before e is active.
	e.timer = h.clock.AfterFunc(delay, func() { hk.finish(h.clock, e, http.StatusAccepted) })
	hk.changes.notify()
	return true
}

// activate adds e to the records and the active set. hk.mu is held.
func (hk *hook) activate(e *entry) {
	hk.requests++
	hk.records.push(e)
	e.active = len(hk.active)
	hk.active = append(hk.active, e)
	hk.pending.Add(1)
}

// finish ends an active e with status: it leaves the counts and joins the
// ended requests. It reports false when e had already ended (a timer and
// Close may race to finish it).
func (hk *hook) finish(clock faults.Clock, e *entry, status int) bool {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if e.active < 0 {
		return false
	}
	last := len(hk.active) - 1
	hk.active[e.active] = hk.active[last]
	hk.active[e.active].active = e.active
	hk.active[last] = nil
	hk.active = hk.active[:last]
	e.active = -1
	if e.held {
		hk.inflight.Add(-1)
		hk.statuses[status]++
		hk.load.held.release()
	} else {
		hk.load.pending.release()
	}
	hk.pending.Add(-1)
	e.Status = status
	hk.end(clock, e)
	hk.changes.notify()
	return true
}

// record adds e, answered with status at once, to the records.
func (hk *hook) record(clock faults.Clock, e *entry, status int) {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	hk.requests++
	hk.statuses[status]++
	e.Status = status
	hk.records.push(e)
	hk.end(clock, e)
	hk.changes.notify()
}

// end stamps e's End, appends it to the ended ring and reports how long
// it took to Options.Observe. hk.mu is held, so End times are in ring order
// (Recent's scan relies on it). Every request ends here exactly once.
func (hk *hook) end(clock faults.Clock, e *entry) {
	e.End = clock.Now()
	hk.ended.push(e)
	if hk.observe != nil {
		hk.observe(hk.name, e.End.Sub(e.Start))
	}
}

// load counts the requests held and the async work pending over every
// webhook of a Hub, against Options.MaxHeld and MaxPending.
type load struct {
	held, pending       counter
	maxHeld, maxPending int64
}

// counter is a count that is taken before the thing it counts exists.
type counter struct{ n atomic.Int64 }

// take counts one more, unless that would pass limit.
func (c *counter) take(limit int64) bool {
	if c.n.Add(1) > limit {
		c.n.Add(-1)
		return false
	}
	return true
}

func (c *counter) release() { c.n.Add(-1) }
