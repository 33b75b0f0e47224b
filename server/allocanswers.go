package server

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// pion's EventHandler tells when an allocation, a permission or a channel
// is created or deleted, not when one is refreshed, nor the lifetime it
// granted. Its answers say: they pass the interceptor on their way out. So
// the allocation table reads them (before any rule acts on them, since
// pion has done what they say whatever a rule then does to them):
//
//   - an Allocate or Refresh success: the allocation's lifetime, from its
//     LIFETIME, counts from now;
//   - a CreatePermission success: each peer's permission counts from now,
//     and an expired one is restored (permexpire.go);
//   - a ChannelBind success: the peer's permission likewise (pion refreshes
//     it too), and the binding, if it was expired, is restored.
//
// A CreatePermission or ChannelBind answer carries no peer, so its request
// is noted by transaction ID on the way in.

// maxPending bounds the CreatePermission and ChannelBind requests noted
// while they await pion's answer; beyond it one is forgotten (its answer
// then refreshes nothing in the table, and the client's next request
// notes again).
const maxPending = 1024

// pendingRequests are the noted requests, by transaction ID. Guarded by
// allocTable.mu; n is read without it.
type pendingRequests struct {
	n  atomic.Int32 // len(by)
	by map[[stun.TransactionIDSize]byte]pendingRequest
}

// pendingRequest is what one CreatePermission or ChannelBind success
// refreshes or restores.
type pendingRequest struct {
	r       *allocRecord
	perms   []netip.Addr
	channel uint16         // ChannelBind: the number
	peer    netip.AddrPort // ChannelBind: the peer
}

// request notes a CreatePermission or ChannelBind request of a client with
// an allocation.
func (t *allocTable) request(p *faults.Packet, bind bool) {
	var want pendingRequest
	for i := 0; ; i++ {
		peer, ok := peerAddrOf(p.Data, i)
		if !ok {
			break
		}
		want.perms = append(want.perms, peer.Addr())
		if bind {
			want.peer = peer // a ChannelBind has one
			break
		}
	}
	if len(want.perms) == 0 {
		return
	}
	if bind {
		v, ok := p.Attr(uint16(stun.AttrChannelNumber))
		if !ok || len(v) < 2 {
			return
		}
		want.channel = binary.BigEndian.Uint16(v)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.clients[packetKey(p)]
	if len(rs) != 1 {
		return // none; or one client on two listeners: which one is unknown
	}
	want.r = rs[0]
	x := &t.pending
	if x.by == nil {
		x.by = map[[stun.TransactionIDSize]byte]pendingRequest{}
	}
	id := p.TransactionID()
	if _, ok := x.by[id]; !ok && len(x.by) >= maxPending {
		for k := range x.by {
			delete(x.by, k)
			break
		}
	}
	x.by[id] = want
	x.n.Store(int32(len(x.by))) //nolint:gosec // at most maxPending
}

// answer reads pion's answer p (of method m) to a client.
func (t *allocTable) answer(p *faults.Packet, m faults.Method, success bool) {
	switch m {
	case faults.MethodAllocate, faults.MethodRefresh:
		if success {
			t.granted(p)
		}
	case faults.MethodCreatePermission, faults.MethodChannelBind:
		if t.pending.n.Load() > 0 {
			t.answered(p.TransactionID(), success)
		}
	}
}

// granted sets the lifetime of the allocation an Allocate or Refresh
// success p is for from its LIFETIME.
func (t *allocTable) granted(p *faults.Packet) {
	v, ok := p.Attr(uint16(stun.AttrLifetime))
	if !ok || len(v) != 4 {
		return
	}
	d := time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	t.mu.Lock()
	defer t.mu.Unlock()
	if rs := t.clients[packetKey(p)]; len(rs) == 1 { // two: which one is unknown
		rs[0].refreshed, rs[0].lifetime = time.Now(), d
	}
}

// answered applies pion's answer to a noted request: a success refreshes
// the permissions and restores what it names.
func (t *allocTable) answered(id [stun.TransactionIDSize]byte, success bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := &t.pending
	want, ok := x.by[id]
	if !ok {
		return
	}
	delete(x.by, id)
	x.n.Store(int32(len(x.by))) //nolint:gosec // at most maxPending
	r := want.r
	if !success || r.deleted {
		return
	}
	now := time.Now()
	for _, a := range want.perms {
		if _, ok := r.permissions[a]; ok {
			r.permissions[a] = now
		}
		delete(r.deadPerms, a)
	}
	if peer, dead := r.deadChans[want.channel]; want.channel != 0 && dead && peer == want.peer {
		delete(r.deadChans, want.channel)
	}
	t.reindex(r)
}
