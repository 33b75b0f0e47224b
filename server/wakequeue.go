package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// wakeQueue holds the messages due to one socket's reader (delayed ones
// whose time has come, duplicates), oldest first, and wakes a reader
// blocked in the socket to take them: push sets a read deadline in the
// past, the blocked read fails with a timeout that the reader swallows, and
// pop clears the deadline again. UDP and TCP share it.
//
// Its length is bounded by what feeds it: a socket's reader takes from it
// before reading anything new, so it holds at most the delays of the
// server's budget (see delayQueue) plus one message's copies
// (faults.MaxCopies). Safe for concurrent use; pop costs one atomic load
// when the queue is empty.
type wakeQueue struct {
	setDeadline func(time.Time) error // the socket's SetReadDeadline

	busy atomic.Bool // q is not empty or wake is set: pop must look
	mu   sync.Mutex
	q    []datagram
	wake bool // a past read deadline is set
}

func newWakeQueue(setDeadline func(time.Time) error) *wakeQueue {
	return &wakeQueue{setDeadline: setDeadline}
}

// push queues d and wakes the reader.
func (w *wakeQueue) push(d datagram) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.q = append(w.q, d)
	w.busy.Store(true)
	if !w.wake {
		w.wake = true
		// Wake the blocked read now (wall time: this is not a wait).
		_ = w.setDeadline(time.Now())
	}
}

// pushBounded queues d, as push, unless the queue holds max messages
// already: then d is dropped.
func (w *wakeQueue) pushBounded(d datagram, max int) {
	w.mu.Lock()
	full := len(w.q) >= max
	w.mu.Unlock()
	if !full {
		w.push(d)
	}
}

// pop returns the oldest queued message. Taking the lock also clears a
// wake-up deadline, so the next read blocks again.
func (w *wakeQueue) pop() (datagram, bool) {
	if !w.busy.Load() {
		return datagram{}, false // the fast path: no lock
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake {
		w.wake = false
		_ = w.setDeadline(time.Time{})
	}
	if len(w.q) == 0 {
		w.busy.Store(false)
		return datagram{}, false
	}
	d := w.q[0]
	w.q[0] = datagram{} // let the bytes go
	w.q = w.q[1:]
	if len(w.q) == 0 {
		w.q = nil
		w.busy.Store(false)
	}
	return d, true
}
