package faults

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
)

// machineStart is the state every machine starts in.
const machineStart = "started"

// machine is one named state machine. A global machine's state is read and
// moved on lock-free: a rule that requires a state and sets another does so
// with one compare-and-swap, so two packets racing a one-shot transition
// never both win it. A keyed machine (MachineKey "client" or "username")
// keeps one state per key in a bounded table (see keyed.go); state is then
// the state of every key the table does not hold.
type machine struct {
	state atomic.Pointer[string]
	key   string    // "" (one state), MachineKeyClient or MachineKeyUsername
	keyed *keyTable // nil for a global machine
}

func newMachine(key string) *machine {
	m := &machine{key: key}
	s := machineStart
	m.state.Store(&s)
	if key != "" {
		m.keyed = newKeyTable()
	}
	return m
}

// in reports whether m is in state for p's key (for a global machine: in
// state). A username-keyed machine is in no state for a message without
// USERNAME.
func (m *machine) in(p *Packet, state string) bool {
	if m.keyed == nil {
		return *m.state.Load() == state
	}
	cur, ok := m.keyed.get(m, p)
	return ok && cur == state
}

// step is advance for p's key.
func (m *machine) step(p *Packet, requires, sets *string) bool {
	if m.keyed == nil {
		return m.advance(requires, sets)
	}
	return m.keyed.advance(m, p, requires, sets)
}

// reset moves m (every key of it) to state.
func (m *machine) reset(state string) {
	m.state.Store(&state)
	if m.keyed != nil {
		m.keyed.clear()
	}
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
