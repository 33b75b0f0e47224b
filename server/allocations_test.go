package server_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// "The allocation expires mid-call": the client's next Refresh gets 437
// and a new Allocate succeeds; a pion client's relay socket is gone.
func TestExpireAllocation(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	srv := startServer(t, &cfg)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()

	raw := newRawTURN(t, srv, "udp")
	conn := raw.conn
	if m := raw.allocate("user", "pass", 17); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate: %v (code %d), want success", m.Type, errorCodeOf(m))
	}
	refresh := stun.NewType(stun.MethodRefresh, stun.ClassRequest)
	if m := raw.signed(refresh); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Refresh before expiry: code %d, want success", errorCodeOf(m))
	}

	// A pion client with a permission, on another socket.
	pc := newTURNClient(t, srv, "udp", "user", "pass")
	relay, err := pc.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := pc.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}

	list, err := c.Allocations(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("allocations.list = %+v, %v; want 2", list, err)
	}
	pionAlloc := list[1]
	if pionAlloc.Username != "user" || pionAlloc.Transport != "udp" || pionAlloc.Relay.String() != relay.LocalAddr().String() ||
		len(pionAlloc.Permissions) != 1 || pionAlloc.Permissions[0].Peer.String() != "127.0.0.1" || pionAlloc.LifetimeLeft <= 0 {
		t.Errorf("pion client's allocation = %+v, want user/udp, relay %s, a permission for 127.0.0.1", pionAlloc, relay.LocalAddr())
	}
	if list[0].Client.String() != conn.LocalAddr().String() {
		t.Errorf("first allocation is %s's, want the raw client %s", list[0].Client, conn.LocalAddr())
	}

	// Expire the raw client's: its next Refresh gets 437, and it reallocates.
	gone, err := c.ExpireAllocations(ctx, control.AllocationSelector{Client: conn.LocalAddr().String()})
	if err != nil || len(gone) != 1 || gone[0].Client.String() != conn.LocalAddr().String() {
		t.Fatalf("allocations.expire = %+v, %v; want the raw client's", gone, err)
	}
	if m := raw.signed(refresh); errorCodeOf(m) != 437 {
		t.Fatalf("Refresh after expiry: code %d, want 437 Allocation Mismatch", errorCodeOf(m))
	}
	udp17 := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	if m := raw.signed(stun.NewType(stun.MethodAllocate, stun.ClassRequest), udp17); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate after expiry: code %d, want success (reallocated)", errorCodeOf(m))
	}

	// Expire by username: both go; the pion client's relay port is free again.
	gone, err = c.ExpireAllocations(ctx, control.AllocationSelector{Username: "user"})
	if err != nil || len(gone) != 2 {
		t.Fatalf("allocations.expire username = %+v, %v; want 2", gone, err)
	}
	if list, _ := c.Allocations(ctx); len(list) != 0 {
		t.Errorf("after expiry: %d allocations, want 0", len(list))
	}
	freed, err := net.ListenPacket("udp", relay.LocalAddr().String())
	if err != nil {
		t.Errorf("the expired allocation's relay port is still held: %v", err)
	} else {
		freed.Close()
	}

	// Bad input.
	if _, err := c.ExpireAllocations(ctx, control.AllocationSelector{All: true}); control.ErrorCode(err) != control.CodeUnknownAllocation {
		t.Errorf("expire all with none: %v, want unknown_allocation", err)
	}
	if _, err := c.ExpireAllocations(ctx, control.AllocationSelector{Client: "nonsense"}); control.ErrorCode(err) != control.CodeBadRequest {
		t.Errorf("expire client nonsense: %v, want bad_request", err)
	}
	if _, err := c.ExpireAllocations(ctx, control.AllocationSelector{}); control.ErrorCode(err) != control.CodeBadRequest {
		t.Errorf("expire with no selector: %v, want bad_request", err)
	}
	var ce *control.Error
	if _, err := c.ExpireAllocations(ctx, control.AllocationSelector{Username: "nobody"}); !errors.As(err, &ce) || ce.Field != "username" {
		t.Errorf("expire username nobody: %v, want unknown_allocation on username", err)
	}
}

// Expiry over TCP: the Refresh is written into the client's own connection.
func TestExpireAllocationTCP(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	srv := startServer(t, &cfg)
	pc := newTURNClient(t, srv, "tcp", "user", "pass")
	relay, err := pc.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	list := srv.Allocations()
	if len(list) != 1 || list[0].Transport != "tcp" {
		t.Fatalf("Allocations() = %+v, want one tcp allocation", list)
	}
	gone, err := srv.ExpireAllocations(context.Background(), control.AllocationSelector{All: true})
	if err != nil || len(gone) != 1 {
		t.Fatalf("ExpireAllocations(all) = %+v, %v", gone, err)
	}
	if n := len(srv.Allocations()); n != 0 {
		t.Errorf("%d allocations after expiry, want 0", n)
	}
}

// ChannelData on a channel number above 0x4FFF (RFC 5766's range, which
// pion accepts and RFC 8656 narrowed) keeps a TCP stream framed: expiring
// the allocation after it still works, and the Binding request after the
// expiry is seen by the rules (traced) and answered on the same connection.
func TestExpireAllocationAfterRFC5766Channel(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	raw := newRawTURN(t, srv, "tcp")
	if m := raw.allocate("user", "pass", protoUDP); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate: code %d", errorCodeOf(m))
	}
	if _, err := raw.conn.Write([]byte{0x50, 0x00, 0x00, 0x04, 1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ExpireAllocations(context.Background(), control.AllocationSelector{All: true}); err != nil {
		t.Fatal(err)
	}
	m := raw.do(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if m.Type != stun.BindingSuccess {
		t.Fatalf("Binding after the expiry: %v, want a success on the same connection", m.Type)
	}
	for _, r := range srv.TraceSince(0, 0).Messages {
		if r.Dir == faults.In && r.Method == faults.MethodBinding && r.TxID == m.TransactionID {
			return
		}
	}
	t.Errorf("the Binding after channel 0x5000 is not in the trace: the stream was not framed")
}

// TestMismatchOnlyWhenSigned: a Refresh, CreatePermission or ChannelBind
// from a client with no allocation gets 437 Allocation Mismatch from
// stunfault (pion answers none of them) only when its MESSAGE-INTEGRITY
// checks with the user's key, as pion authenticates before it looks for the
// allocation; a wrong password or an unknown user gets pion's 401, with a
// fresh NONCE.
func TestMismatchOnlyWhenSigned(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	peer := &xorPeer{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
	requests := []struct {
		name  string
		typ   stun.MessageType
		attrs []stun.Setter
	}{
		{"Refresh", stun.NewType(stun.MethodRefresh, stun.ClassRequest), nil},
		{"CreatePermission", stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), []stun.Setter{peer}},
		{"ChannelBind", stun.NewType(stun.MethodChannelBind, stun.ClassRequest), []stun.Setter{channelNumber(0x4000), peer}},
	}
	signers := []struct {
		name, user, pass string
		want             int
	}{
		{"right password", "user", "pass", 437},
		{"wrong password", "user", "wrong", 401},
		{"unknown user", "nobody", "pass", 401},
	}
	for _, rq := range requests {
		for _, sg := range signers {
			t.Run(rq.name+"/"+sg.name, func(t *testing.T) {
				t.Parallel()
				raw := newRawTURN(t, srv, "udp")
				raw.challenge(sg.user, sg.pass, 17)
				setters := append([]stun.Setter{stun.TransactionID, rq.typ}, rq.attrs...)
				setters = append(setters, &raw.user, &raw.realm, &raw.nonce, raw.mi, stun.Fingerprint)
				m := raw.do(setters...)
				if got := errorCodeOf(m); got != sg.want {
					t.Fatalf("%s signed with %s/%s and no allocation: %s code %d, want %d", rq.name, sg.user, sg.pass, m.Type, got, sg.want)
				}
				if sg.want == 401 {
					var nonce stun.Nonce
					if err := nonce.GetFrom(m); err != nil {
						t.Errorf("pion's 401: no NONCE (%v)", err)
					}
				}
			})
		}
	}
}
