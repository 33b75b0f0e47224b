package server

import (
	"sync"

	"github.com/stunfault/stunfault/faults"
)

// timerSet holds the pending delayed sends of one socket: bounded in number,
// and all cancelled by stop. Safe for concurrent use.
type timerSet struct {
	clock faults.Clock
	max   int

	mu      sync.Mutex
	next    uint64
	pending map[uint64]faults.Timer
	stopped bool
}

func newTimerSet(clock faults.Clock, max int) *timerSet {
	return &timerSet{clock: clock, max: max, pending: map[uint64]faults.Timer{}}
}

// after runs f once the clock has moved v's delay on, unless stop comes
// first. It reports false, and runs nothing, when the set is full or stopped.
func (ts *timerSet) after(d faults.Verdict, f func()) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stopped || len(ts.pending) >= ts.max {
		return false
	}
	ts.next++
	id := ts.next
	ts.pending[id] = ts.clock.AfterFunc(d.Delay, func() {
		ts.mu.Lock()
		_, live := ts.pending[id]
		delete(ts.pending, id)
		stopped := ts.stopped
		ts.mu.Unlock()
		if live && !stopped {
			f()
		}
	})
	return true
}

// stop cancels every pending call; later calls to after do nothing.
func (ts *timerSet) stop() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.stopped = true
	for id, t := range ts.pending {
		t.Stop()
		delete(ts.pending, id)
	}
}
