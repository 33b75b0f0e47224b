package faults

import (
	"slices"
	"sync/atomic"
)

// Subscription receives the firings that match its filter, in sequence
// order, as they happen. Delivery never blocks the packet path: when C is
// full, the event is dropped and counted in Lost.
type Subscription struct {
	// C delivers the firings as journal entries. Their Labels maps are
	// shared and must not be modified. C is closed by Close.
	C <-chan Entry

	c      chan Entry
	filter queryFilter
	lost   atomic.Uint64
	j      *Journal
	closed bool // under j.mu
}

// Subscribe starts delivering firings that match filter (its SinceSeq and
// Limit are ignored) on a channel with room for buffer events (at least 1).
// The caller should call Close when finished.
func (e *Engine) Subscribe(buffer int, filter Query) *Subscription {
	return e.journal.subscribe(buffer, filter)
}

func (j *Journal) subscribe(buffer int, filter Query) *Subscription {
	filter.SinceSeq, filter.Limit = 0, 0
	c := make(chan Entry, max(buffer, 1))
	s := &Subscription{C: c, c: c, filter: newQueryFilter(filter), j: j}
	j.mu.Lock()
	defer j.mu.Unlock()
	// Copy on write: record ranges over the slice it loaded.
	j.subs = append(slices.Clip(j.subs), s)
	return s
}

// offer sends e without blocking. j.mu is held, so events reach each
// subscriber in sequence order and never after Close.
func (s *Subscription) offer(e *Entry) {
	if !s.filter.match(e) {
		return
	}
	select {
	case s.c <- *e:
	default:
		s.lost.Add(1)
		s.j.lost.Add(1)
	}
}

// Lost returns how many events were dropped, over every subscription there
// has been, because a subscriber's channel was full.
func (j *Journal) Lost() uint64 { return j.lost.Load() }

// Lost returns how many matching events were dropped because C was full.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Close stops delivery and closes C. It is safe to call more than once.
func (s *Subscription) Close() {
	j := s.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	j.subs = slices.DeleteFunc(slices.Clone(j.subs), func(x *Subscription) bool { return x == s })
	close(s.c)
}
