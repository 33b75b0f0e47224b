package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// steerLoops returns two read loops sharing one steering on a manual clock,
// as a udp listener with two loops has them, and the clock.
func steerLoops() (a, b *packetConn, s *steering, clk *faults.ManualClock) {
	ic := &interceptor{allocs: newAllocTable(relayTimes{}, nil, nil, "")}
	s = newSteering()
	clk = faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s.now = clk.Now
	a = &packetConn{ic: ic, steer: s}
	b = &packetConn{ic: ic, steer: s}
	return a, b, s, clk
}

// tokenAllocate returns an Allocate request carrying RESERVATION-TOKEN tok.
func tokenAllocate(tok [reservationTokenLen]byte) []byte {
	return stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrReservationToken, Value: tok[:]}).Raw
}

var steerBinding = stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw

// steerClientN is the n-th of many distinct client addresses.
func steerClientN(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(n >> 8), byte(n)}), uint16(1024+n%50000)) //nolint:gosec // small n
}

// The steered clients' bound holds with expiry: maxSteered unanswered
// clients fill the table, the next is refused, and once they have been
// steered steerTokenLife ago room is made for a new one (the expired ones
// are gone, not counted); a client whose allocation pion made does not
// expire; steering and dropping one client again and again keeps pending
// within its bound.
func TestSteeringExpiryBounds(t *testing.T) {
	t.Parallel()
	tok := [reservationTokenLen]byte{1, 2, 3, 4, 5, 6, 7, 8}

	t.Run("unanswered clients expire, the bound holds", func(t *testing.T) {
		t.Parallel()
		a, b, s, clk := steerLoops()
		s.remember(tok, a)
		p := tokenAllocate(tok)
		for i := range maxSteered {
			if l := s.target(b, p, steerClientN(i)); l != a {
				t.Fatalf("client %d: steered to %p, want the token's loop %p", i, l, a)
			}
		}
		over := steerClientN(maxSteered)
		if l := s.target(b, p, over); l != nil {
			t.Fatalf("client %d over the bound steered to %p, want served where read", maxSteered, l)
		}
		if n := s.nclients.Load(); n != maxSteered {
			t.Fatalf("nclients = %d, want %d", n, maxSteered)
		}

		clk.Advance(steerTokenLife)
		if l := s.target(b, steerBinding, steerClientN(0)); l != a {
			t.Fatalf("at exactly %v: client 0 served by %p, want still steered to %p", steerTokenLife, l, a)
		}
		clk.Advance(time.Millisecond)
		if l := s.target(b, steerBinding, steerClientN(0)); l != nil {
			t.Fatalf("after %v: client 0 steered to %p, want served where read", steerTokenLife, l)
		}
		if n, m, q := s.nclients.Load(), len(s.clients), len(s.pending); n != 0 || m != 0 || q != 0 {
			t.Fatalf("after expiry: nclients %d, clients %d, pending %d; want all 0", n, m, q)
		}
		s.remember(tok, a) // a fresh token: the old one expired too
		if l := s.target(b, p, over); l != a {
			t.Fatalf("after expiry: new client steered to %p, want %p", l, a)
		}
		if n := s.nclients.Load(); n != 1 {
			t.Fatalf("nclients = %d, want 1", n)
		}
	})

	t.Run("an allocated client does not expire", func(t *testing.T) {
		t.Parallel()
		a, b, s, clk := steerLoops()
		s.remember(tok, a)
		p := tokenAllocate(tok)
		done, lost := steerClientN(1), steerClientN(2)
		for _, c := range []netip.AddrPort{done, lost} {
			if l := s.target(b, p, c); l != a {
				t.Fatalf("%v: steered to %p, want %p", c, l, a)
			}
		}
		s.allocated(done, b) // another loop's allocation: not this steering's
		s.allocated(done, a)
		clk.Advance(time.Hour)
		if l := s.target(b, steerBinding, done); l != a {
			t.Fatalf("allocated client an hour on: served by %p, want still steered to %p", l, a)
		}
		if l := s.target(b, steerBinding, lost); l != nil {
			t.Fatalf("unallocated client an hour on: steered to %p, want served where read", l)
		}
		s.drop(done) // its allocation went
		if n, q := s.nclients.Load(), len(s.pending); n != 0 || q != 0 {
			t.Fatalf("after drop: nclients %d, pending %d; want 0, 0", n, q)
		}
	})

	t.Run("steer and drop churn keeps pending bounded", func(t *testing.T) {
		t.Parallel()
		a, b, s, _ := steerLoops()
		s.remember(tok, a)
		p := tokenAllocate(tok)
		c := steerClientN(7)
		for i := range 3 * maxSteerPending {
			if l := s.target(b, p, c); l != a {
				t.Fatalf("round %d: steered to %p, want %p", i, l, a)
			}
			s.drop(c)
			if len(s.pending) > maxSteerPending {
				t.Fatalf("round %d: pending holds %d, want at most %d", i, len(s.pending), maxSteerPending)
			}
		}
	})
}
