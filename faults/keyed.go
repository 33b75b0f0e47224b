package faults

import (
	"container/list"
	"net/netip"
	"sync"
)

// The values of Rule.MachineKey.
const (
	// MachineKeyClient gives each client (transport and address:port) its
	// own state in the machine.
	MachineKeyClient = "client"
	// MachineKeyUsername gives each USERNAME its own state; a message
	// without USERNAME is in no state of such a machine (its rules do not
	// fire on it).
	MachineKeyUsername = "username"
)

// MaxMachineKeys bounds the keys one keyed machine remembers. Beyond it the
// least recently used key is forgotten: that client (or user) starts over
// in the machine's base state ("started", or what SetMachineState set).
const MaxMachineKeys = 10000

// keyTable is a keyed machine's states: an LRU of at most MaxMachineKeys
// keys, under one mutex (only rules of keyed machines take it).
type keyTable struct {
	mu      sync.Mutex
	clients map[clientKey]*list.Element
	users   map[string]*list.Element
	lru     list.List // of *keyEntry, most recently used first
}

type clientKey struct {
	transport Transport
	addr      netip.AddrPort
}

type keyEntry struct {
	client clientKey
	user   string
	byUser bool
	state  string
}

func newKeyTable() *keyTable {
	return &keyTable{clients: map[clientKey]*list.Element{}, users: map[string]*list.Element{}}
}

// find returns p's entry (nil when the table has none) and whether p has a
// key at all. t.mu is held.
func (t *keyTable) find(m *machine, p *Packet) (*list.Element, bool) {
	if m.key == MachineKeyClient {
		return t.clients[clientKey{p.Transport, p.Client}], true
	}
	if !p.scanned {
		p.scan()
	}
	if !p.hasUser {
		return nil, false
	}
	return t.users[string(p.user)], true
}

// get returns the state of p's key; false when p has no key.
func (t *keyTable) get(m *machine, p *Packet) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.find(m, p)
	switch {
	case !ok:
		return "", false
	case el == nil:
		return *m.state.Load(), true
	}
	return el.Value.(*keyEntry).state, true
}

// advance moves p's key from requires (any when nil) to sets, remembering
// the key (and forgetting the least recently used one when full).
func (t *keyTable) advance(m *machine, p *Packet, requires, sets *string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.find(m, p)
	if !ok {
		return false
	}
	cur := *m.state.Load()
	if el != nil {
		cur = el.Value.(*keyEntry).state
	}
	if requires != nil && cur != *requires {
		return false
	}
	if sets == nil {
		if el != nil {
			t.lru.MoveToFront(el)
		}
		return true
	}
	if el != nil {
		el.Value.(*keyEntry).state = *sets
		t.lru.MoveToFront(el)
		return true
	}
	if t.lru.Len() >= MaxMachineKeys {
		t.remove(t.lru.Back())
	}
	e := &keyEntry{state: *sets}
	if m.key == MachineKeyClient {
		e.client = clientKey{p.Transport, p.Client}
		t.clients[e.client] = t.lru.PushFront(e)
	} else {
		e.user, e.byUser = string(p.user), true
		t.users[e.user] = t.lru.PushFront(e)
	}
	return true
}

// remove forgets el. t.mu is held.
func (t *keyTable) remove(el *list.Element) {
	e := t.lru.Remove(el).(*keyEntry)
	if e.byUser {
		delete(t.users, e.user)
	} else {
		delete(t.clients, e.client)
	}
}

func (t *keyTable) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.clients)
	clear(t.users)
	t.lru.Init()
}

// states returns every remembered key's state, the key spelled
// "udp 127.0.0.1:5000" or the username.
func (t *keyTable) states() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, t.lru.Len())
	for el := t.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*keyEntry)
		if e.byUser {
			out[e.user] = e.state
		} else {
			out[e.client.transport.String()+" "+e.client.addr.String()] = e.state
		}
	}
	return out
}
