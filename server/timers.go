package server

import (
	"sync"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// The server's delay budget: at most this many delayed messages, holding
// at most this many bytes, are pending at once across every socket of one
// server. A delay that would exceed it passes its message at once,
// journaled as delay_overflow and counted in stats.
const (
	maxDelayed      = 4096
	maxDelayedBytes = 16 << 20
)

// delayQueue holds every pending delayed message of one server, whatever
// its socket: one budget in count and bytes, each message timed on the
// server's clock. It is the engine's faults.Holder: room is reserved when
// the engine decides a delay (so a delay without room is journaled as a
// delay_overflow), and the Delay verdict's effect holds the message in it
// with after. A message is handed on when its delay is up, or at once when
// the rule that delayed it is retired (removed, replaced, or gone with a
// cleared or replaced rule set), and dropped when its socket closes. Safe
// for concurrent use.
type delayQueue struct {
	clock faults.Clock

	mu      sync.Mutex
	pending map[*delayed]struct{}
	n       int // messages pending or reserved for
	bytes   int // their bytes
	rules   map[<-chan struct{}]*ruleDelays
}

var _ faults.Holder = (*delayQueue)(nil)

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

// Hold reserves room for one delayed message of size bytes, reporting
// false when the budget has none.
func (q *delayQueue) Hold(size int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n >= maxDelayed || q.bytes+size > maxDelayedBytes {
		return false
	}
	q.n++
	q.bytes += size
	return true
}

// unhold frees room Hold reserved for a message that is not held after all.
func (q *delayQueue) unhold(size int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n--
	q.bytes -= size
}

// after holds a message of size bytes, in room Hold reserved for it, and
// runs run once the clock has moved d on (or at once when retired closes
// first), unless owner's socket closes first. It reports false, frees the
// room and runs nothing when owner is closed.
func (q *delayQueue) after(owner *delayOwner, d time.Duration, size int, retired <-chan struct{}, run func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if owner.closed {
		q.n--
		q.bytes -= size
		return false
	}
	e := &delayed{owner: owner, size: size, rule: retired, run: run}
	q.pending[e] = struct{}{}
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
	q.n--
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

// len returns how many messages are pending (or reserved for) and the bytes
// they hold.
func (q *delayQueue) len() (n, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.bytes
}
