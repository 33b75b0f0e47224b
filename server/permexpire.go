package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// Expiring one permission or one channel binding. pion/turn v5.1.3 cannot
// end either before its lifetime (its allocation manager is internal, and
// no client message deletes one), so stunfault marks it expired in the
// allocation table and from then on stands in front of pion as a server
// whose permission or binding timed out:
//
//   - a permission for peer IP P: datagrams from P to the relay are dropped
//     at the relay socket (peerConn), before pion reads them; the client's
//     Send indications to P and its ChannelData on a channel bound to P are
//     dropped before pion reads them;
//   - a channel N bound to P:port: the client's ChannelData on N is dropped;
//     pion's ChannelData on N to the client (P's data, while the permission
//     lives) goes out as the Data indication from P that a server without
//     the binding sends.
//
// allocations.list no longer shows them. A CreatePermission for P, or a
// ChannelBind of N to P:port (which also refreshes P's permission), that
// pion answers with success restores them, as a real server installs them
// again; pion's own later deletion or creation of them ends the mark too.
// A ChannelBind of N to another peer, or of P:port to another number, gets
// pion's 400 Bad Request: pion still has the binding. RFC 8656 §12 tells a
// client to wait 5 minutes after a binding expired before either, so a
// client that follows it never meets this.

// expiredIndex finds the allocations with an expired permission or channel
// binding from the peer leg. Guarded by allocTable.mu; n is read without it.
type expiredIndex struct {
	n       atomic.Int32                    // len(byRelay): 0 means nothing to check
	byRelay map[netip.AddrPort]*allocRecord // by relayed address
}

// expiry is what an expired permission or binding does to a message.
type expiry uint8

const (
	notExpired     expiry = iota // nothing: the message goes on to the engine
	expiredDrop                  // dropped, as by a server without it
	expiredUnbound               // rewritten into a Data indication, then sent
)

var (
	// expiredDropVerdict drops a message an expired permission or binding
	// stops.
	expiredDropVerdict = faults.Verdict{Kind: faults.Drop, Action: &faults.Action{Type: "drop"}}
	// expiredUnboundVerdict sends the Data indication that replaced pion's
	// ChannelData on an expired binding.
	expiredUnboundVerdict = faults.Verdict{Kind: faults.Pass, Action: &faults.Action{Type: "pass"}}
)

// verdict is what the interception acts on for e.
func (e expiry) verdict() faults.Verdict {
	if e == expiredDrop {
		return expiredDropVerdict
	}
	return expiredUnboundVerdict
}

func (r *allocRecord) hasExpired() bool { return len(r.deadPerms) > 0 || len(r.deadChans) > 0 }

func (r *allocRecord) key() rotKey {
	if r.transport == "udp" {
		return rotKey{faults.UDP, r.client}
	}
	return rotKey{faults.TCP, r.client}
}

// reindex puts r into the index, or takes it out, as it has expired entries
// or not. Called with t.mu held.
func (t *allocTable) reindex(r *allocRecord) {
	x := &t.exp
	has := r.hasExpired() && !r.deleted
	if has == r.indexed {
		return
	}
	r.indexed = has
	if has {
		if x.byRelay == nil {
			x.byRelay = map[netip.AddrPort]*allocRecord{}
		}
		x.byRelay[r.relay] = r
	} else {
		delete(x.byRelay, r.relay)
	}
	x.n.Store(int32(len(x.byRelay))) //nolint:gosec // at most the allocations
}

// peerExpired reports whether a datagram from peer to the relayed address
// relay meets an expired permission (and is dropped before pion reads it).
func (t *allocTable) peerExpired(relay, peer netip.AddrPort) bool {
	if t == nil || t.exp.n.Load() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.exp.byRelay[relay]
	if r == nil {
		return false
	}
	_, dead := r.deadPerms[peer.Addr().Unmap()]
	return dead
}

// expired decides a client-leg message an expired permission or binding
// acts on: the zero Verdict for every other message. It also hands the
// answers and requests that refresh or restore something to
// allocanswers.go.
// The interception never asks it about a Binding (see decide).
func (t *allocTable) expired(p *faults.Packet) expiry {
	if t == nil || p.Leg != faults.ClientLeg {
		return notExpired
	}
	return t.expiredClient(p)
}

func (t *allocTable) expiredClient(p *faults.Packet) expiry {
	if p.IsChannelData() {
		return t.expiredChannelData(p)
	}
	if !p.IsSTUN() {
		return notExpired
	}
	m, c := p.Method(), p.Class()
	switch {
	case p.Dir == faults.Out && (c == faults.ClassSuccess || c == faults.ClassError):
		t.answer(p, m, c == faults.ClassSuccess)
	case p.Dir != faults.In:
	case m == faults.MethodSend && c == faults.ClassIndication:
		if t.exp.n.Load() == 0 {
			break
		}
		peer, ok := peerAddrOf(p.Data, 0)
		if !ok {
			break
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, r := range t.clients[packetKey(p)] {
			if _, dead := r.deadPerms[peer.Addr()]; dead {
				return expiredDrop
			}
		}
	case c == faults.ClassRequest && (m == faults.MethodCreatePermission || m == faults.MethodChannelBind):
		t.request(p, m == faults.MethodChannelBind)
	}
	return notExpired
}

// expiredChannelData drops the client's ChannelData on an expired binding
// (or to a peer whose permission expired), and turns pion's ChannelData on
// an expired binding into a Data indication: p then holds the indication,
// which the pass verdict sends (and the trace records) in its place.
func (t *allocTable) expiredChannelData(p *faults.Packet) expiry {
	if t.exp.n.Load() == 0 || len(p.Data) < 4 {
		return notExpired
	}
	n := binary.BigEndian.Uint16(p.Data)
	var from netip.AddrPort
	drop := false
	t.mu.Lock()
	for _, r := range t.clients[packetKey(p)] {
		peer, unbound := r.deadChans[n]
		if !unbound {
			var ok bool
			if peer, ok = r.channels[n]; !ok {
				continue
			}
		}
		_, noPerm := r.deadPerms[peer.Addr()]
		if unbound || noPerm {
			from, drop = peer, noPerm || p.Dir == faults.In
			break
		}
	}
	t.mu.Unlock()
	switch {
	case !from.IsValid():
		return notExpired
	case drop:
		return expiredDrop
	}
	size := int(binary.BigEndian.Uint16(p.Data[2:4]))
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication),
		xorPeerAddress{from},
		stun.RawAttribute{Type: stun.AttrData, Value: p.Data[4 : 4+size]})
	if err != nil {
		return expiredDrop
	}
	*p = faults.Packet{Data: m.Raw, Dir: p.Dir, Transport: p.Transport, Client: p.Client}
	return expiredUnbound
}

// xorPeerAddress is an XOR-PEER-ADDRESS attribute (RFC 8656 §18.3: the
// encoding of XOR-MAPPED-ADDRESS).
type xorPeerAddress struct{ a netip.AddrPort }

func (x xorPeerAddress) AddTo(m *stun.Message) error {
	xa := stun.XORMappedAddress{IP: x.a.Addr().AsSlice(), Port: int(x.a.Port())}
	return xa.AddToAs(m, stun.AttrXORPeerAddress)
}

// packetKey is the index key of p's client.
func packetKey(p *faults.Packet) rotKey { return rotKey{p.Transport, p.Client} }

// peerAddrOf returns the i-th XOR-PEER-ADDRESS of the STUN message msg
// (RFC 8489 §14.2: the port XORed with the cookie's top half, the address
// with the cookie and, for IPv6, the transaction ID), unmapped.
func peerAddrOf(msg []byte, i int) (netip.AddrPort, bool) {
	if len(msg) < 20 {
		return netip.AddrPort{}, false
	}
	b := msg[20:]
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			break
		}
		v := b[4 : 4+n]
		b = b[min(len(b), 4+(n+3)&^3):]
		if stun.AttrType(typ) != stun.AttrXORPeerAddress {
			continue
		}
		if i > 0 {
			i--
			continue
		}
		var ip [16]byte
		size := 4
		switch {
		case n == 8 && v[1] == 1:
		case n == 20 && v[1] == 2:
			size = 16
		default:
			return netip.AddrPort{}, false
		}
		for k := range size {
			ip[k] = v[4+k] ^ msg[4+k] // the cookie (4 bytes), then the transaction ID
		}
		port := binary.BigEndian.Uint16(v[2:]) ^ 0x2112
		a, _ := netip.AddrFromSlice(ip[:size])
		return netip.AddrPortFrom(a.Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

// selected returns the live allocations sel (an allocation selector)
// selects, under t.mu.
func (t *allocTable) selected(sel control.AllocationSelector) []*allocRecord {
	var out []*allocRecord
	for _, r := range t.allocs {
		if selects(sel, r.client, r.username) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y *allocRecord) int { return x.created.Compare(y.created) })
	return out
}

// expirePermissions marks the permission for sel.Peer of every allocation
// sel selects expired, and returns those it marked.
func (t *allocTable) expirePermissions(sel control.PermissionSelector) ([]control.ExpiredPermission, error) {
	peer, err := netip.ParseAddr(sel.Peer)
	if err != nil {
		return nil, fmt.Errorf("server: expire permission: peer %q: %w", sel.Peer, err)
	}
	peer = peer.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.selected(sel.AllocationSelector)
	if len(rs) == 0 {
		return nil, fmt.Errorf("server: %w for %s", errNoAllocation, sel.AllocationSelector)
	}
	var out []control.ExpiredPermission
	for _, r := range rs {
		if _, live := r.permissions[peer]; !live {
			continue
		}
		if _, dead := r.deadPerms[peer]; dead {
			continue
		}
		if r.deadPerms == nil {
			r.deadPerms = map[netip.Addr]struct{}{}
		}
		r.deadPerms[peer] = struct{}{}
		t.reindex(r)
		out = append(out, control.ExpiredPermission{Client: r.client, Server: r.server, Relay: r.relay, Peer: peer})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("server: %w for peer %s in the allocations of %s", control.ErrUnknownPermission, peer, sel.AllocationSelector)
	}
	return out, nil
}

// expireChannels marks channel sel.Channel of every allocation sel selects
// expired, and returns those it marked.
func (t *allocTable) expireChannels(sel control.ChannelSelector) ([]control.ExpiredChannel, error) {
	if sel.Channel < control.MinChannel || sel.Channel > control.MaxChannel {
		return nil, fmt.Errorf("server: expire channel: %#x is not a channel number (want %#x to %#x)", sel.Channel, control.MinChannel, control.MaxChannel)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.selected(sel.AllocationSelector)
	if len(rs) == 0 {
		return nil, fmt.Errorf("server: %w for %s", errNoAllocation, sel.AllocationSelector)
	}
	var out []control.ExpiredChannel
	for _, r := range rs {
		peer, live := r.channels[sel.Channel]
		if _, dead := r.deadChans[sel.Channel]; !live || dead {
			continue
		}
		if r.deadChans == nil {
			r.deadChans = map[uint16]netip.AddrPort{}
		}
		r.deadChans[sel.Channel] = peer
		t.reindex(r)
		out = append(out, control.ExpiredChannel{Client: r.client, Server: r.server, Relay: r.relay, Number: sel.Channel, Peer: peer})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("server: %w: %#x in the allocations of %s", control.ErrUnknownChannel, sel.Channel, sel.AllocationSelector)
	}
	return out, nil
}

// ExpirePermissions ends the permission for sel.Peer (an IP address) of
// the allocations sel selects (a client's address:port, a username, or
// all) as if its lifetime had run out: datagrams between the relay and
// that peer stop both ways (Send indications, ChannelData and the peer's
// datagrams alike), allocations.list no longer shows it, and a
// CreatePermission (or ChannelBind) for the peer that succeeds restores
// it. It returns the permissions it ended. No allocation selected is an
// error wrapping control.ErrUnknownAllocation; none with a live permission
// for the peer, one wrapping control.ErrUnknownPermission.
func (s *Server) ExpirePermissions(_ context.Context, sel control.PermissionSelector) ([]control.ExpiredPermission, error) {
	return s.ic.allocs.expirePermissions(sel)
}

// ExpireChannels ends channel binding sel.Channel of the allocations sel
// selects as if its lifetime had run out: the client's ChannelData on it
// is dropped, the peer's data reaches the client as Data indications
// while the permission lives, allocations.list no longer shows it, and a
// ChannelBind of the same number to the same peer that succeeds restores
// it (one to another peer gets pion's 400: pion still has the binding). It
// returns the bindings it ended. No allocation selected is an error
// wrapping control.ErrUnknownAllocation; none with that live binding, one
// wrapping control.ErrUnknownChannel.
func (s *Server) ExpireChannels(_ context.Context, sel control.ChannelSelector) ([]control.ExpiredChannel, error) {
	return s.ic.allocs.expireChannels(sel)
}
