package faults

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
)

// machineStart is the state every machine starts in.
const machineStart = "started"

// machine is one named state machine. Its state is read and moved on
// lock-free: a rule that requires a state and sets another does so with one
// compare-and-swap, so two packets racing a one-shot transition never both
// win it.
type machine struct {
	state atomic.Pointer[string]
}

func newMachine() *machine {
	m := new(machine)
	s := machineStart
	m.state.Store(&s)
	return m
}

// advance moves m from the state r requires (any, when r.requires is nil) to
// the state r sets. It reports false when m is not in the required state.
func (m *machine) advance(requires, sets *string) bool {
	for {
		cur := m.state.Load()
		if requires != nil && *cur != *requires {
			return false
		}
		if sets == nil || m.state.CompareAndSwap(cur, sets) {
			return true
		}
	}
}

// txTrackerSize is how many (client, transaction) pairs the transmission
// tracker remembers. A retransmission arrives within seconds of the first
// copy, so a few thousand live transactions are plenty for a test server.
const (
	txTrackerBits = 13
	txTrackerSize = 1 << txTrackerBits
)

// txTracker counts the copies of each transaction ID seen from each client,
// for Match.Transmission. It is a direct-mapped table of fixed size: a new
// transaction evicts whatever hashed to its slot, so a transaction evicted
// between two of its copies starts counting again at 1. It allocates nothing
// after it is made, and exists only while some rule matches on transmission.
type txTracker struct {
	mu    sync.Mutex
	slots [txTrackerSize]txSlot
}

type txSlot struct {
	client netip.AddrPort
	id     [12]byte
	dir    Direction
	n      uint32
}

// observe records p (a STUN message) and returns which copy of its
// transaction it is: 1 for the first, 2 for the first retransmission.
func (t *txTracker) observe(p *Packet) int {
	id := p.TransactionID()
	// Transaction IDs are random (RFC 8489 §6), so their bytes are a hash.
	h := binary.LittleEndian.Uint64(id[0:8]) ^ uint64(binary.LittleEndian.Uint32(id[8:12]))<<13 ^
		uint64(p.Client.Port())
	h *= 0x9E3779B97F4A7C15
	s := &t.slots[h>>(64-txTrackerBits)]
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.n == 0 || s.id != id || s.client != p.Client || s.dir != p.Dir {
		*s = txSlot{client: p.Client, id: id, dir: p.Dir}
	}
	if s.n < 1<<31 {
		s.n++
	}
	return int(s.n)
}
