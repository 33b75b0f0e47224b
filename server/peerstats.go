package server

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/trace"
)

// peerCounts counts one relay socket's peer-leg datagrams and their bytes,
// by direction and decision (the action kind taken, Pass when no peer-leg
// rule fired; Drop too for a peer whose permission permissions.expire
// ended): fixed atomic arrays, so counting a datagram is two atomic
// adds and allocates nothing. About 1 KiB per allocation.
type peerCounts struct {
	n, bytes [2][nKinds]atomic.Uint64
}

// add counts one datagram of size bytes going dir, decided k.
func (pc *peerCounts) add(dir faults.Direction, k faults.ActionKind, size int) {
	i := int(k)
	if i >= nKinds {
		i = 0
	}
	pc.n[dir&1][i].Add(1)
	pc.bytes[dir&1][i].Add(uint64(size))
}

// peerTotals is peerCounts read out.
type peerTotals struct {
	n, bytes [2][nKinds]uint64
}

// addTo adds pc's counts into t.
func (pc *peerCounts) addTo(t *peerTotals) {
	for d := range 2 {
		for k := range nKinds {
			t.n[d][k] += pc.n[d][k].Load()
			t.bytes[d][k] += pc.bytes[d][k].Load()
		}
	}
}

// peerLegs keeps the relay sockets open now, so /metrics and GET /trace
// can read their counts, and the counts of those already closed. A relay
// socket is registered once (at most one per allocation: bounded by pion's
// allocations) and leaves at Close; a datagram counted after its socket
// closed is not in the totals.
type peerLegs struct {
	mu      sync.Mutex
	live    map[*peerConn]struct{}
	retired peerTotals
}

func (l *peerLegs) open(c *peerConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live == nil {
		l.live = map[*peerConn]struct{}{}
	}
	l.live[c] = struct{}{}
}

func (l *peerLegs) close(c *peerConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.live[c]; ok {
		delete(l.live, c)
		c.counts.addTo(&l.retired)
	}
}

// totals returns the counts of every relay socket there has been.
func (l *peerLegs) totals() peerTotals {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.retired
	for c := range l.live {
		c.counts.addTo(&t)
	}
	return t
}

// relays returns each open relay socket's counts, by relay address.
func (l *peerLegs) relays() []trace.PeerLeg {
	l.mu.Lock()
	out := make([]trace.PeerLeg, 0, len(l.live))
	for c := range l.live {
		var t peerTotals
		c.counts.addTo(&t)
		out = append(out, trace.PeerLeg{Relay: c.alloc, In: t.leg(faults.In), Out: t.leg(faults.Out)})
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b trace.PeerLeg) int { return cmp.Compare(a.Relay.String(), b.Relay.String()) })
	return out
}

// leg returns t's counts of one direction as the trace shows them.
func (t *peerTotals) leg(dir faults.Direction) trace.PeerCounts {
	var pc trace.PeerCounts
	for k := range nKinds {
		n := t.n[dir][k]
		if n == 0 {
			continue
		}
		pc.Datagrams += n
		pc.Bytes += t.bytes[dir][k]
		if pc.Decisions == nil {
			pc.Decisions = map[string]uint64{}
		}
		pc.Decisions[faults.ActionKind(k).String()] = n
	}
	return pc
}
