package server

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// pion/turn v5.1.3 has no API to list allocations or end one: its
// allocation manager is internal. So stunfault keeps its own table from
// pion's EventHandler (created, deleted, permissions, channels; OnAuth for
// the USERNAME a 5-tuple allocated with), and expires an allocation the way
// its client would: a Refresh with LIFETIME 0, signed with the user's key
// and a pion nonce (nonce.go), is handed to pion's reader on the wrapped
// socket that holds it (a UDP listener's read loop whose pion manager made
// the allocation, or the TCP connection) as if it came from the client's 5-tuple,
// and pion's answer to it is swallowed on the way out. pion then deletes
// the allocation (its relay socket closes, data stops) and reports it.
//
// pion answers a Refresh, CreatePermission or ChannelBind for a 5-tuple
// with no allocation with nothing at all (it logs "no allocation found");
// RFC 8656 §7.3, §9.2 and §11.2 say 437, and a client whose allocation
// timed out gets 437 from coturn. So the interceptor answers such a
// request 437 itself, from the same table: a client learns at once, not
// after its retransmissions run out.

// maxAllocUsers bounds the usernames remembered for 5-tuples that
// authenticated an Allocate but have no allocation (yet).
const maxAllocUsers = 10000

// expireTimeout bounds how long an expiry waits for pion to delete an
// allocation.
const expireTimeout = 2 * time.Second

// allocTable is every live allocation, and the sockets to reach pion's
// reader on. Safe for concurrent use.
type allocTable struct {
	lifetime   time.Duration // [relay].allocation_lifetime, as pion grants it by default
	permission time.Duration
	nonces     *nonceSource
	auth       *authenticator
	realm      string

	mu     sync.Mutex
	allocs map[string]*allocRecord // by fiveTupleKey(client, server)
	// clients is allocs by the client's transport and address: the packet
	// path knows no listener address. Almost always one each.
	clients map[rotKey][]*allocRecord
	byUser  map[string]int         // live allocations per username
	users   map[string]string      // the USERNAME of each 5-tuple's last authenticated Allocate or Refresh
	relays  map[string]*packetConn // the read loop of each UDP relay pion has not reported yet, by relay address
	tcp     map[string]*tcpConn    // by fiveTupleKey(remote, local)

	swallowing atomic.Int32 // len(swallow), read on every outbound message
	swallow    map[[stun.TransactionIDSize]byte]struct{}

	exp     expiredIndex    // expired permissions and channel bindings; see permexpire.go
	pending pendingRequests // see allocanswers.go
}

type allocRecord struct {
	client, server netip.AddrPort
	transport      string
	username       string
	relay          netip.AddrPort
	created        time.Time // wall time: pion's lifetimes are on real time
	// refreshed is when pion last granted lifetime (its Allocate or Refresh
	// success went out, with LIFETIME: allocanswers.go).
	refreshed   time.Time
	lifetime    time.Duration
	permissions map[netip.Addr]time.Time
	channels    map[uint16]netip.AddrPort
	loop        *packetConn // the UDP read loop whose pion manager holds it; nil on TCP
	gone        chan struct{}
	deleted     bool // pion deleted it

	// Expired by stunfault while pion still has them (permexpire.go):
	// permissions by peer IP, channels by number (with their peer).
	deadPerms map[netip.Addr]struct{}
	deadChans map[uint16]netip.AddrPort
	indexed   bool // in t.exp
}

func newAllocTable(cfg relayTimes, nonces *nonceSource, auth *authenticator, realm string) *allocTable {
	return &allocTable{
		lifetime: cfg.allocation, permission: cfg.permission,
		nonces: nonces, auth: auth, realm: realm,
		allocs:  map[string]*allocRecord{},
		clients: map[rotKey][]*allocRecord{},
		byUser:  map[string]int{},
		users:   map[string]string{},
		relays:  map[string]*packetConn{},
		tcp:     map[string]*tcpConn{},
		swallow: map[[stun.TransactionIDSize]byte]struct{}{},
	}
}

type relayTimes struct{ allocation, permission time.Duration }

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// events adds the table's callbacks to h.
func (t *allocTable) events(h turn.EventHandler) turn.EventHandler {
	prevAuth, prevCreated, prevDeleted := h.OnAuth, h.OnAllocationCreated, h.OnAllocationDeleted
	prevPermC, prevPermD, prevChanC, prevChanD := h.OnPermissionCreated, h.OnPermissionDeleted, h.OnChannelCreated, h.OnChannelDeleted
	h.OnAuth = func(src, dst net.Addr, protocol, username, realm, method string, verdict bool) {
		if prevAuth != nil {
			prevAuth(src, dst, protocol, username, realm, method, verdict)
		}
		if verdict && (method == stun.MethodAllocate.String() || method == stun.MethodRefresh.String()) {
			t.authenticated(src, dst, username)
		}
	}
	h.OnAllocationCreated = func(src, dst net.Addr, protocol, userID, realm string, relay net.Addr, port int) {
		if prevCreated != nil {
			prevCreated(src, dst, protocol, userID, realm, relay, port)
		}
		t.created(src, dst, relay)
	}
	h.OnAllocationDeleted = func(src, dst net.Addr, protocol, userID, realm string) {
		if prevDeleted != nil {
			prevDeleted(src, dst, protocol, userID, realm)
		}
		t.deleted(src, dst)
	}
	h.OnPermissionCreated = func(src, dst net.Addr, protocol, userID, realm string, relay net.Addr, peer net.IP) {
		if prevPermC != nil {
			prevPermC(src, dst, protocol, userID, realm, relay, peer)
		}
		t.with(src, dst, func(r *allocRecord) {
			if a, ok := netip.AddrFromSlice(peer); ok {
				r.permissions[a.Unmap()] = time.Now()
				delete(r.deadPerms, a.Unmap())
			}
		})
	}
	h.OnPermissionDeleted = func(src, dst net.Addr, protocol, userID, realm string, relay net.Addr, peer net.IP) {
		if prevPermD != nil {
			prevPermD(src, dst, protocol, userID, realm, relay, peer)
		}
		t.with(src, dst, func(r *allocRecord) {
			if a, ok := netip.AddrFromSlice(peer); ok {
				delete(r.permissions, a.Unmap())
				delete(r.deadPerms, a.Unmap())
			}
		})
	}
	h.OnChannelCreated = func(src, dst net.Addr, protocol, userID, realm string, relay, peer net.Addr, number uint16) {
		if prevChanC != nil {
			prevChanC(src, dst, protocol, userID, realm, relay, peer, number)
		}
		t.with(src, dst, func(r *allocRecord) {
			r.channels[number] = addrPortOf(peer)
			delete(r.deadChans, number)
		})
	}
	h.OnChannelDeleted = func(src, dst net.Addr, protocol, userID, realm string, relay, peer net.Addr, number uint16) {
		if prevChanD != nil {
			prevChanD(src, dst, protocol, userID, realm, relay, peer, number)
		}
		t.with(src, dst, func(r *allocRecord) {
			delete(r.channels, number)
			delete(r.deadChans, number)
		})
	}
	return h
}

func (t *allocTable) authenticated(src, dst net.Addr, username string) {
	key := fiveTupleKey(src, dst)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.allocs[key] != nil {
		return // a Refresh: its success answer says what pion granted
	}
	if len(t.users) >= maxAllocUsers {
		for k := range t.users { // any one: these are Allocates that never completed
			delete(t.users, k)
			break
		}
	}
	t.users[key] = username
}

func (t *allocTable) created(src, dst, relay net.Addr) {
	key := fiveTupleKey(src, dst)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	transport := "udp" // a udp and a tcp listener may share an address: ask the connections
	if _, ok := t.tcp[key]; ok {
		transport = "tcp"
	}
	loop := t.relays[relay.String()]
	delete(t.relays, relay.String())
	r := &allocRecord{
		client: addrPortOf(src), server: addrPortOf(dst), transport: transport,
		username: t.users[key], relay: addrPortOf(relay), created: now, refreshed: now, lifetime: t.lifetime,
		permissions: map[netip.Addr]time.Time{}, channels: map[uint16]netip.AddrPort{},
		loop: loop, gone: make(chan struct{}),
	}
	t.allocs[key] = r
	t.clients[r.key()] = append(t.clients[r.key()], r)
	t.byUser[t.users[key]]++
	delete(t.users, key)
	if loop != nil && loop.steer != nil {
		loop.steer.allocated(r.client, loop) // see steer.go
	}
}

func (t *allocTable) deleted(src, dst net.Addr) {
	key := fiveTupleKey(src, dst)
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.allocs[key]; r != nil {
		close(r.gone)
		r.deleted = true
		t.reindex(r)
		delete(t.allocs, key)
		if l := slices.DeleteFunc(t.clients[r.key()], func(o *allocRecord) bool { return o == r }); len(l) > 0 {
			t.clients[r.key()] = l
		} else {
			delete(t.clients, r.key())
		}
		if t.byUser[r.username]--; t.byUser[r.username] <= 0 {
			delete(t.byUser, r.username)
		}
		if r.loop != nil && r.loop.steer != nil {
			r.loop.steer.drop(r.client) // see steer.go
		}
	}
}

// with runs f on the allocation of src and dst, if any, and then updates
// the index of expired entries.
func (t *allocTable) with(src, dst net.Addr, f func(*allocRecord)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.allocs[fiveTupleKey(src, dst)]; r != nil {
		f(r)
		t.reindex(r)
	}
}

// has reports whether the client p came from (on p's transport) has an
// allocation on any listener.
func (t *allocTable) has(p *faults.Packet) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients[packetKey(p)]) > 0
}

// hasUDP reports whether the UDP client has an allocation on any listener.
func (t *allocTable) hasUDP(client netip.AddrPort) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients[rotKey{faults.UDP, client}]) > 0
}

// UserAllocations returns username's live allocations (faults.AllocationCounter).
func (t *allocTable) UserAllocations(username []byte) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byUser[string(username)]
}

// Allocations returns the live allocations in all (faults.AllocationCounter).
func (t *allocTable) Allocations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.allocs)
}

// claim records that the UDP relay at relay was made for read loop c's
// allocation manager, until pion reports the allocation (created). At most
// maxAllocUsers wait: pion reports each at once, on the same goroutine.
func (t *allocTable) claim(relay net.Addr, c *packetConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.relays) >= maxAllocUsers {
		for k := range t.relays { // any one: a relay pion never reported
			delete(t.relays, k)
			break
		}
	}
	t.relays[relay.String()] = c
}

func (t *allocTable) addTCP(c *tcpConn) {
	t.mu.Lock()
	t.tcp[fiveTupleKey(c.RemoteAddr(), c.LocalAddr())] = c
	t.mu.Unlock()
}

func (t *allocTable) removeTCP(c *tcpConn) {
	if t == nil {
		return
	}
	key := fiveTupleKey(c.RemoteAddr(), c.LocalAddr())
	t.mu.Lock()
	if t.tcp[key] == c {
		delete(t.tcp, key)
	}
	t.mu.Unlock()
}

// swallowed reports whether p is pion's answer to a message stunfault
// wrote into pion on a client's behalf (and forgets it).
func (t *allocTable) swallowed(p *faults.Packet) bool {
	if t == nil || t.swallowing.Load() == 0 || p.Dir != faults.Out || !p.IsSTUN() {
		return false
	}
	id := p.TransactionID()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.swallow[id]; !ok {
		return false
	}
	delete(t.swallow, id)
	t.swallowing.Add(-1)
	return true
}

// list returns the allocations, oldest first.
func (t *allocTable) list() []control.Allocation {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]control.Allocation, 0, len(t.allocs))
	for _, r := range t.allocs {
		a := control.Allocation{
			Client: r.client, Server: r.server, Transport: r.transport, Username: r.username, Relay: r.relay,
			Created:      r.created,
			LifetimeLeft: faults.Duration(max(r.refreshed.Add(r.lifetime).Sub(now), 0)),
			Permissions:  []control.AllocationPermission{},
			Channels:     []control.AllocationChannel{},
		}
		for peer, at := range r.permissions {
			if _, dead := r.deadPerms[peer]; dead {
				continue
			}
			a.Permissions = append(a.Permissions, control.AllocationPermission{Peer: peer, LifetimeLeft: faults.Duration(max(at.Add(t.permission).Sub(now), 0))})
		}
		slices.SortFunc(a.Permissions, func(x, y control.AllocationPermission) int { return x.Peer.Compare(y.Peer) })
		for n, peer := range r.channels {
			if _, dead := r.deadChans[n]; dead {
				continue
			}
			a.Channels = append(a.Channels, control.AllocationChannel{Number: n, Peer: peer})
		}
		slices.SortFunc(a.Channels, func(x, y control.AllocationChannel) int { return int(x.Number) - int(y.Number) })
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y control.Allocation) int { return x.Created.Compare(y.Created) })
	return out
}

// selects reports whether sel selects the allocation of client and user.
func selects(sel control.AllocationSelector, client netip.AddrPort, user string) bool {
	return sel.All || (sel.Client != "" && client.String() == sel.Client) || (sel.Username != "" && user == sel.Username)
}

// errNoAllocation is wrapped by expire when nothing matches its selector.
var errNoAllocation = control.ErrUnknownAllocation

// expire ends every allocation sel selects, as its client's Refresh with
// LIFETIME 0 would, and returns them once pion has deleted them (or ctx or
// expireTimeout ends).
func (t *allocTable) expire(ctx context.Context, sel control.AllocationSelector) ([]control.Allocation, error) {
	var picked []*allocRecord
	var out []control.Allocation
	for _, a := range t.list() {
		if selects(sel, a.Client, a.Username) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("server: %w for %s", errNoAllocation, sel)
	}
	nonce, err := t.nonces.get()
	if err != nil {
		return nil, fmt.Errorf("server: expire: %w", err)
	}
	for _, a := range out {
		r, err := t.inject(a, nonce)
		if err != nil {
			return nil, err
		}
		picked = append(picked, r)
	}
	wait, cancel := context.WithTimeout(ctx, expireTimeout)
	defer cancel()
	for i, r := range picked {
		select {
		case <-r.gone:
		case <-wait.Done():
			return nil, fmt.Errorf("server: expire %s: pion did not delete the allocation: %w", out[i].Client, wait.Err())
		}
	}
	return out, nil
}

// inject writes a signed Refresh with LIFETIME 0 into pion's reader on a's
// listener, from a's client.
func (t *allocTable) inject(a control.Allocation, nonce string) (*allocRecord, error) {
	key := t.auth.keyFor(a.Username)
	if key == nil {
		return nil, fmt.Errorf("server: expire %s: no key for user %q", a.Client, a.Username)
	}
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.NewUsername(a.Username), stun.NewRealm(t.realm), stun.NewNonce(nonce),
		lifetimeZero{}, stun.MessageIntegrity(key), stun.Fingerprint)
	if err != nil {
		return nil, err
	}
	srcKey := a.Client.String() + " " + a.Server.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.allocs[srcKey]
	if r == nil {
		return nil, fmt.Errorf("server: expire %s: %w (gone meanwhile)", a.Client, errNoAllocation)
	}
	t.swallow[m.TransactionID] = struct{}{}
	t.swallowing.Add(1)
	d := datagram{data: m.Raw}
	switch a.Transport {
	case "udp":
		// The read loop whose manager holds it: another loop's pion has no
		// allocation for the 5-tuple and would not answer.
		if r.loop == nil {
			return nil, fmt.Errorf("server: expire %s: no read loop of listener %s holds it", a.Client, a.Server)
		}
		d.addr = net.UDPAddrFromAddrPort(a.Client)
		r.loop.ready.push(d)
	default:
		tc := t.tcp[srcKey]
		if tc == nil {
			return nil, fmt.Errorf("server: expire %s: its connection is closed", a.Client)
		}
		tc.ready.push(d)
	}
	return r, nil
}

// lifetimeZero is a LIFETIME attribute of 0 seconds: deallocate.
type lifetimeZero struct{}

func (lifetimeZero) AddTo(m *stun.Message) error {
	m.Add(stun.AttrLifetime, []byte{0, 0, 0, 0})
	return nil
}

// Allocations returns the live TURN allocations, oldest first: 5-tuple,
// username, relayed address, lifetime left, permissions and channels.
func (s *Server) Allocations() []control.Allocation { return s.ic.allocs.list() }

// ExpireAllocations ends the allocations sel selects (a client's
// address:port, a username, or all) as if their lifetime had run out: the
// client's next Refresh gets 437 Allocation Mismatch, its relayed data
// stops, and a new Allocate succeeds. It returns them once pion has
// deleted them. No match is an error wrapping control.ErrUnknownAllocation.
func (s *Server) ExpireAllocations(ctx context.Context, sel control.AllocationSelector) ([]control.Allocation, error) {
	return s.ic.allocs.expire(ctx, sel)
}

var (
	// swallowAction drops pion's answer to an injected Refresh.
	swallowAction = &faults.Action{Type: "drop"}
	// mismatchAction answers a Refresh, CreatePermission or ChannelBind
	// from a client with no allocation.
	mismatchAction = &faults.Action{Type: "error", Code: 437, Reason: "Allocation Mismatch", Integrity: "auto"}
)

// mismatch reports whether p is a signed Refresh, CreatePermission or
// ChannelBind request from a client with no allocation: pion would not
// answer it at all.
func (t *allocTable) mismatch(p *faults.Packet) bool {
	if t == nil || p.Dir != faults.In || p.Leg != faults.ClientLeg || !p.IsSTUN() ||
		p.Class() != faults.ClassRequest || !p.HasIntegrity() {
		return false // an unsigned one gets pion's 401 first, as RFC 8656 orders it
	}
	switch p.Method() {
	case faults.MethodRefresh, faults.MethodCreatePermission, faults.MethodChannelBind:
		return !t.has(p) && t.verified(p)
	}
	return false
}

// verified reports whether p's MESSAGE-INTEGRITY checks with the key of its
// USERNAME, as pion checks it before it looks for the allocation: a request
// pion answers 401 (an unknown user, an expired REST API credential, a
// wrong password) is left to pion. It costs a copy and an HMAC, only for a
// signed Refresh, CreatePermission or ChannelBind from a client with no
// allocation. pion also checks the NONCE first, which stunfault cannot
// (pion's nonces are HMACs under its own key): a stale one still gets 437.
func (t *allocTable) verified(p *faults.Packet) bool {
	if t.auth == nil {
		return true
	}
	user, ok := p.Username()
	if !ok {
		return false
	}
	var src net.Addr = net.UDPAddrFromAddrPort(p.Client) // for the authenticator's debug log
	if p.Transport != faults.UDP {
		src = net.TCPAddrFromAddrPort(p.Client)
	}
	_, key, ok := t.auth.handle(&turn.RequestAttributes{Username: string(user), Realm: t.realm, SrcAddr: src})
	if !ok {
		return false
	}
	m := &stun.Message{Raw: slices.Clone(p.Data)}
	if err := m.Decode(); err != nil {
		return false
	}
	return stun.MessageIntegrity(key).Check(m) == nil
}
