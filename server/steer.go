package server

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RFC 8656 §7.2 pairs two Allocates: one with EVEN-PORT (R bit) whose
// success carries a RESERVATION-TOKEN, and a second, often from another
// client socket (turnutils_uclient's RTCP relay), that carries the token
// and gets the reserved port + 1. pion keeps the reservation in the
// allocation manager of the read loop that answered the first, and the
// kernel hashes the second client socket to any loop: another loop's pion
// answers 508. So a udp listener with several read loops remembers which
// loop issued each token (seen on the Allocate success going out), and an
// Allocate carrying a token that arrives on another loop is handed to the
// issuing loop's reader (its wake queue, as the expiry's Refresh is), with
// every later datagram of that client address:port (steering). pion answers
// through the issuing loop's socket, which has the same local address.
// Rules, trace, metrics and stats see a steered datagram on the loop that
// serves it, as if that loop had read it.

// maxSteerTokens bounds the RESERVATION-TOKENs remembered per udp listener,
// each for steerTokenLife; beyond, a new token is not remembered (its pair
// may get 508, as with no steering).
const maxSteerTokens = 10000

// steerTokenLife is how long a RESERVATION-TOKEN is remembered: pion's
// reservation lifetime (30 s, RFC 8656 §14.9's recommendation). It is also
// how long a client stays steered while no allocation comes of it (its
// Allocate lost, dropped by a rule, or never answered): pion's reservation
// is gone by then too.
const steerTokenLife = 30 * time.Second

// maxSteered bounds the client address:ports steered per udp listener;
// beyond, a new one is not steered (its Allocate gets pion's 508).
const maxSteered = 10000

// maxSteerQueue bounds the steered datagrams waiting in one loop's wake
// queue; beyond, they are dropped, as a full socket buffer drops them.
const maxSteerQueue = 1024

// The STUN message types and the attribute steering looks at.
const (
	typeAllocateRequest = 0x0003
	typeAllocateSuccess = 0x0103
	typeAllocateError   = 0x0113
	attrReservation     = 0x0022
	reservationTokenLen = 8
)

// steering is one udp listener's tokens and steered clients, shared by its
// read loops. Safe for concurrent use; while no client is steered, a
// datagram costs one atomic load (clients) and, for an Allocate request,
// another (tokens).
//
// A steered client without an allocation expires steerTokenLife after it
// was steered. All live that long, so pending, in the order they were
// steered, is also the order they expire in: whoever holds mu on the paths
// that already touch the table (a datagram while some client is steered, a
// new steered client) first pops the expired ones off its head, no timer
// and no scan. A client whose allocation pion made leaves pending's
// accounting (allocated) and stays steered until the allocation goes.
type steering struct {
	ntokens  atomic.Int32 // len(tokens)
	nclients atomic.Int32 // len(clients)

	mu      sync.Mutex
	now     func() time.Time // time.Now; a test's clock (SetSteerClock)
	tokens  map[[reservationTokenLen]byte]steerToken
	clients map[netip.AddrPort]*steerClient
	// pending holds the steered clients in the order they were steered
	// (each steered once: a client steered again after a drop is a new
	// entry); entries dropped or allocated meanwhile are skipped when they
	// reach the head. At most maxSteerPending: beyond, it is compacted to the
	// live unallocated ones, at most maxSteered.
	pending []*steerClient
}

// maxSteerPending bounds steering.pending (see there): twice maxSteered, so a
// compaction at least halves it and costs O(1) per entry amortised.
const maxSteerPending = 2 * maxSteered

type steerToken struct {
	loop *packetConn
	at   time.Time
}

// steerClient is one steered client.
type steerClient struct {
	client    netip.AddrPort
	loop      *packetConn // the loop that serves it
	at        time.Time   // when it was steered
	allocated bool        // pion made its allocation: steered until that goes
}

func newSteering() *steering {
	return &steering{
		now:     time.Now,
		tokens:  map[[reservationTokenLen]byte]steerToken{},
		clients: map[netip.AddrPort]*steerClient{},
	}
}

// stunType returns b's STUN message type, or 0 when b is not a STUN
// message (ChannelData, short).
func stunType(b []byte) uint16 {
	if len(b) < 20 || b[0]&0xC0 != 0 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// reservationToken returns the RESERVATION-TOKEN of the STUN message b, if
// it has one of the standard 8 bytes.
func reservationToken(b []byte) (tok [reservationTokenLen]byte, ok bool) {
	n := min(int(binary.BigEndian.Uint16(b[2:]))+20, len(b))
	for i := 20; i+4 <= n; {
		typ, l := binary.BigEndian.Uint16(b[i:]), int(binary.BigEndian.Uint16(b[i+2:]))
		v := i + 4
		if v+l > n {
			return tok, false
		}
		if typ == attrReservation {
			if l != reservationTokenLen {
				return tok, false
			}
			copy(tok[:], b[v:v+l])
			return tok, true
		}
		i = v + (l+3)&^3
	}
	return tok, false
}

// sent looks at pion's datagram p to to going out through loop c: an
// Allocate success with a RESERVATION-TOKEN remembers the token's loop; an
// Allocate error ends the steering of a client that has no allocation.
func (s *steering) sent(c *packetConn, p []byte, to netip.AddrPort) {
	switch stunType(p) {
	case typeAllocateSuccess:
		if tok, ok := reservationToken(p); ok {
			s.remember(tok, c)
		}
	case typeAllocateError:
		if s.nclients.Load() != 0 && !c.ic.allocs.hasUDP(to) {
			s.drop(to)
		}
	}
}

func (s *steering) remember(tok [reservationTokenLen]byte, c *packetConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.tokens) >= maxSteerTokens {
		for k, t := range s.tokens {
			if now.Sub(t.at) > steerTokenLife {
				delete(s.tokens, k)
			}
		}
		if len(s.tokens) >= maxSteerTokens {
			return
		}
	}
	s.tokens[tok] = steerToken{loop: c, at: now}
	s.ntokens.Store(int32(len(s.tokens))) //nolint:gosec // at most maxSteerTokens
}

// drop ends the steering of client (its allocation is gone, or its
// Allocate failed).
func (s *steering) drop(client netip.AddrPort) {
	if s.nclients.Load() == 0 {
		return
	}
	s.mu.Lock()
	delete(s.clients, client)
	s.nclients.Store(int32(len(s.clients))) //nolint:gosec // at most maxSteered
	s.mu.Unlock()
}

// allocated tells the steering that pion of loop made client's allocation:
// a steered client then stays steered, without expiring, until drop.
func (s *steering) allocated(client netip.AddrPort, loop *packetConn) {
	if s.nclients.Load() == 0 {
		return
	}
	s.mu.Lock()
	if e := s.clients[client]; e != nil && e.loop == loop {
		e.allocated = true
	}
	s.mu.Unlock()
}

// expire ends the steering of the clients steered more than steerTokenLife
// ago that have no allocation. Called with mu held.
func (s *steering) expire() {
	if len(s.pending) == 0 {
		return
	}
	now := s.now()
	n := 0
	for _, e := range s.pending {
		if now.Sub(e.at) <= steerTokenLife {
			break
		}
		if !e.allocated && s.clients[e.client] == e {
			delete(s.clients, e.client)
		}
		n++
	}
	if n == 0 {
		return
	}
	clear(s.pending[:n]) // let the collector have them
	s.pending = s.pending[n:]
	s.nclients.Store(int32(len(s.clients))) //nolint:gosec // at most maxSteered
}

// steer makes loop l serve client from now on. Called with mu held, after
// expire.
func (s *steering) steer(client netip.AddrPort, l *packetConn) bool {
	if len(s.clients) >= maxSteered {
		return false
	}
	if len(s.pending) >= maxSteerPending {
		s.pending = slices.DeleteFunc(s.pending, func(e *steerClient) bool {
			return e.allocated || s.clients[e.client] != e
		})
	}
	e := &steerClient{client: client, loop: l, at: s.now()}
	s.clients[client] = e
	s.pending = append(s.pending, e)
	s.nclients.Store(int32(len(s.clients))) //nolint:gosec // at most maxSteered
	return true
}

// target returns the loop that should serve p from client, read by loop c,
// or nil when c serves it.
func (s *steering) target(c *packetConn, p []byte, client netip.AddrPort) *packetConn {
	if s.nclients.Load() != 0 {
		s.mu.Lock()
		s.expire()
		var l *packetConn
		if e := s.clients[client]; e != nil {
			l = e.loop
		}
		s.mu.Unlock()
		if l != nil {
			if l == c {
				return nil
			}
			return l
		}
	}
	if s.ntokens.Load() == 0 || stunType(p) != typeAllocateRequest {
		return nil
	}
	tok, ok := reservationToken(p)
	if !ok || c.ic.allocs.hasUDP(client) {
		return nil // a client with an allocation stays where it is (pion: 437)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	t, ok := s.tokens[tok]
	if !ok || t.loop == c || s.now().Sub(t.at) > steerTokenLife {
		return nil
	}
	if e := s.clients[client]; e != nil { // steered meanwhile
		if e.loop == c {
			return nil
		}
		return e.loop
	}
	if !s.steer(client, t.loop) {
		return nil
	}
	return t.loop
}

// forward hands a copy of the datagram p from addr (client) to loop l's
// reader, which shows it to the engine and pion as if it had read it.
func forward(l *packetConn, p []byte, addr net.Addr, client netip.AddrPort) {
	d := datagram{data: append([]byte(nil), p...), addr: addr, client: client, steered: true}
	l.ready.pushBounded(d, maxSteerQueue)
}
