package server

import (
	"sync"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// The server's delay budget: at most this many delayed messages, holding
// at most this many bytes, are pending at once across every socket of one
// server. A delay that would exceed it passes its message at once (counted
// in stats as delay_overflows).
const (
	maxDelayed      = 4096
	maxDelayedBytes = 16 << 20
)

// delayQueue holds every pending delayed message of one server, whatever
// its socket: one budget in count and bytes, each message timed on the
// server's clock. A message is handed on when its delay is up, or at once
// when the rule that delayed it is retired (removed, replaced, or gone with
// a cleared or replaced rule set), and dropped when its socket closes. Safe
// for concurrent use.
type delayQueue struct {
	clock faults.Clock

	mu      sync.Mutex
	pending map[*delayed]struct{}
	bytes   int
	rules   map[<-chan struct{}]*ruleDelays
}

// delayed is one pending message.
type delayed struct {
	owner *delayOwner
	size  int
	rule  <-chan struct{} // closed when its rule is retired; nil: none
	timer faults.Timer
	run   func() // hands the message on
}

// delayOwner is one socket's share of the queue.
type delayOwner struct{ closed bool } // under delayQueue.mu

// ruleDelays counts the pending messages of one rule, watched by one
// goroutine for the rule's retirement while the count is not zero.
type ruleDelays struct {
	n    int
	idle chan struct{} // closed when n drops to 0: the watcher exits
}

func newDelayQueue(clock faults.Clock) *delayQueue {
	return &delayQueue{clock: clock, pending: map[*delayed]struct{}{}, rules: map[<-chan struct{}]*ruleDelays{}}
}

// after runs run once the clock has moved d on (or at once when retired
// closes first), unless owner's socket closes first. It reports false, and
// runs nothing, when the budget has no room for size more bytes or owner is
// closed.
func (q *delayQueue) after(owner *delayOwner, d time.Duration, size int, retired <-chan struct{}, run func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if owner.closed || len(q.pending) >= maxDelayed || q.bytes+size > maxDelayedBytes {
		return false
	}
	e := &delayed{owner: owner, size: size, rule: retired, run: run}
	q.pending[e] = struct{}{}
	q.bytes += size
	if retired != nil {
		rd := q.rules[retired]
		if rd == nil {
			rd = &ruleDelays{idle: make(chan struct{})}
			q.rules[retired] = rd
			go q.watch(retired, rd.idle)
		}
		rd.n++
	}
	e.timer = q.clock.AfterFunc(d, func() {
		if q.take(e) {
			e.run()
		}
	})
	return true
}

// take removes e from the queue, reporting whether it was still there: of
// its timer, its rule's retirement and its socket's close, only the first
// to take it acts on it. q.mu is not held.
func (q *delayQueue) take(e *delayed) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.remove(e)
}

// remove is take with q.mu held.
func (q *delayQueue) remove(e *delayed) bool {
	if _, ok := q.pending[e]; !ok {
		return false
	}
	delete(q.pending, e)
	q.bytes -= e.size
	if e.rule != nil {
		if rd := q.rules[e.rule]; rd != nil {
			if rd.n--; rd.n == 0 {
				delete(q.rules, e.rule)
				close(rd.idle)
			}
		}
	}
	return true
}

// watch hands on at once the pending messages of a rule once it is
// retired, and exits when the rule has none left.
func (q *delayQueue) watch(retired <-chan struct{}, idle <-chan struct{}) {
	select {
	case <-idle:
		return
	case <-retired:
	}
	for _, e := range q.takeAll(func(e *delayed) bool { return e.rule == retired }) {
		e.timer.Stop()
		e.run()
	}
}

// cancel drops the pending messages of owner's socket, which is closing,
// and refuses new ones.
func (q *delayQueue) cancel(owner *delayOwner) {
	q.mu.Lock()
	owner.closed = true
	q.mu.Unlock()
	for _, e := range q.takeAll(func(e *delayed) bool { return e.owner == owner }) {
		e.timer.Stop()
	}
}

// takeAll removes and returns the pending messages for which match holds.
func (q *delayQueue) takeAll(match func(*delayed) bool) []*delayed {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*delayed
	for e := range q.pending {
		if match(e) && q.remove(e) {
			out = append(out, e)
		}
	}
	return out
}
