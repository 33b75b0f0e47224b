package server

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// Nonce rotation: pion's nonces are HMACs it checks itself, and it has no
// way to invalidate them. So stunfault rotates in front of it: after
// RotateNonces, the first signed request of each client gets 438 Stale
// Nonce with a NONCE pion issued after the rotation (nonce.go), and the
// client's retry, signed with it, reaches pion and succeeds.

// maxRotated bounds the clients remembered as having had their 438 since
// the last rotation; beyond it the table starts over, and a client may get
// a second 438 (its retry then succeeds).
const maxRotated = 10000

type nonceRotation struct {
	gen     atomic.Uint64 // rotations so far; 0: none
	mu      sync.Mutex
	done    map[rotKey]uint64 // the rotation each client had its 438 for
	nonces  *nonceSource
	pending atomic.Bool // some rotation is not yet answered for everyone
}

type rotKey struct {
	transport faults.Transport
	client    netip.AddrPort
}

var staleNonceAction = &faults.Action{Type: "error", Code: 438, Reason: "Stale Nonce", Integrity: "auto"}

// rotate starts a rotation and returns its number.
func (r *nonceRotation) rotate() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nonces.mu.Lock()
	r.nonces.nonce = "" // the next 401 or 438 carries a nonce issued from now on
	r.nonces.mu.Unlock()
	if r.done == nil {
		r.done = map[rotKey]uint64{}
	}
	r.pending.Store(true)
	return r.gen.Add(1)
}

// stale reports whether p is a client's first signed request since the
// last rotation (and records that it was answered).
func (r *nonceRotation) stale(p *faults.Packet) bool {
	if r == nil || !r.pending.Load() || p.Dir != faults.In || p.Leg != faults.ClientLeg || !p.IsSTUN() ||
		p.Class() != faults.ClassRequest || !p.HasIntegrity() {
		return false
	}
	gen := r.gen.Load()
	k := rotKey{p.Transport, p.Client}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done[k] >= gen {
		return false
	}
	if len(r.done) >= maxRotated {
		clear(r.done)
	}
	r.done[k] = gen
	return true
}

// RotateNonces makes every client's next signed request get 438 Stale
// Nonce with a fresh NONCE, which its retry then uses successfully. It
// returns the rotation's number (1 for the first).
func (s *Server) RotateNonces() uint64 { return s.ic.rotation.rotate() }

// CloseConnection closes the TCP or TLS connection of the client at
// address:port (pion then ends its allocation). No such connection is an
// error wrapping control.ErrUnknownAllocation.
func (s *Server) CloseConnection(_ context.Context, client string) error {
	t := s.ic.allocs
	t.mu.Lock()
	var found *tcpConn
	for _, c := range t.tcp {
		if addrPortOf(c.RemoteAddr()).String() == client {
			found = c
			break
		}
	}
	t.mu.Unlock()
	if found == nil {
		return fmt.Errorf("server: no TCP or TLS connection from %s: %w", client, control.ErrUnknownAllocation)
	}
	return found.Close()
}
