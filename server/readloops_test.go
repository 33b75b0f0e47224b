package server_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// udpLoops returns the read loops of srv's udp listener, as stats.get shows
// them, and fails unless stats lists exactly one udp listener.
func udpLoops(t *testing.T, srv *server.Server) []control.LoopStats {
	t.Helper()
	c := dialControl(t, srv.ControlURL())
	defer c.Close()
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var loops [][]control.LoopStats
	for _, l := range st.Listeners {
		if l.Transport == "udp" {
			loops = append(loops, l.Loops)
		}
	}
	if len(loops) != 1 {
		t.Fatalf("stats: %d udp listeners, want one (with its read loops): %+v", len(loops), st.Listeners)
	}
	return loops[0]
}

// maxLoopProbes bounds the client sockets clientsOnLoops opens: with two
// loops, 64 clients all hashed to one loop has odds of 2^-63.
const maxLoopProbes = 64

// clientsOnLoops opens raw UDP clients, each sending one Binding, until
// every one of srv's read loops has one (the kernel picks a client's loop
// by a hash of its address and port, so it takes a few). It returns one
// client per loop, in loop order, each a client whose Binding that loop
// alone counted.
func clientsOnLoops(t *testing.T, srv *server.Server) []*rawTURN {
	t.Helper()
	before := udpLoops(t, srv)
	found := make([]*rawTURN, len(before))
	for range maxLoopProbes {
		r := newRawTURN(t, srv, "udp")
		if m := r.do(stun.TransactionID, stun.BindingRequest, stun.Fingerprint); m.Type != stun.BindingSuccess {
			t.Fatalf("Binding: %s, want success", m.Type)
		}
		after := udpLoops(t, srv)
		var moved []int
		for i := range after {
			if after[i].Datagrams != before[i].Datagrams {
				moved = append(moved, i)
			}
		}
		if len(moved) != 1 {
			t.Fatalf("one Binding moved loops %v (before %+v, after %+v), want exactly one", moved, before, after)
		}
		if i := moved[0]; found[i] == nil {
			found[i] = r
		}
		before = after
		if !slices.Contains(found, nil) {
			return found
		}
	}
	t.Fatalf("%d clients did not reach every one of %d read loops", maxLoopProbes, len(found))
	return nil
}

// Two read loops on one udp listener: a client on each allocates, relays
// to a peer, is counted by one quota, gets 438 once after a nonce rotation
// and 437 after its allocation is expired; the trace and stats show one
// listener.
func TestReadLoopsServeOneListener(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Server.ReadLoops = 2
	signed := true
	cfg.Rules = []faults.Rule{{
		ID:     "quota",
		Match:  faults.Match{Methods: []string{"allocate"}, Classes: []string{"request"}, Authenticated: &signed, MinAllocations: 2},
		Action: faults.Action{Type: "error", Code: 508},
	}}
	srv := startServer(t, &cfg)
	udp := srv.TURNAddr("udp")
	var ls []server.Listener
	for _, l := range srv.Listeners() {
		if l.Transport == "udp" {
			ls = append(ls, l)
		}
	}
	if len(ls) != 1 || ls[0].ReadLoops != 2 {
		t.Fatalf("Listeners() udp = %+v, want one listener with 2 read loops", ls)
	}

	clients := clientsOnLoops(t, srv)
	peerConn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peerConn.Close()
	peerAddr := peerConn.LocalAddr().(*net.UDPAddr).AddrPort()
	for i, r := range clients {
		if m := r.allocate("user", "pass", protoUDP); m.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("loop %d: Allocate: code %d, want success", i, errorCodeOf(m))
		}
		if m := r.signed(createPermissionReq, peer(peerAddr)); m.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("loop %d: CreatePermission: code %d, want success", i, errorCodeOf(m))
		}
	}

	// Relay: a Send indication reaches the peer, the peer's answer comes
	// back as a Data indication on the client's own socket.
	list := srv.Allocations()
	if len(list) != 2 {
		t.Fatalf("Allocations() = %+v, want 2", list)
	}
	for i, r := range clients {
		payload := []byte{'l', 'o', 'o', 'p', byte('0' + i)}
		send := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
			peer(peerAddr), stun.RawAttribute{Type: stun.AttrData, Value: payload}, stun.Fingerprint)
		if _, err := r.conn.Write(send.Raw); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_ = peerConn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := peerConn.ReadFrom(buf)
		if err != nil || string(buf[:n]) != string(payload) {
			t.Fatalf("loop %d: peer read %q, %v; want %q", i, buf[:n], err, payload)
		}
		if _, err := peerConn.WriteTo([]byte("back"), from); err != nil {
			t.Fatal(err)
		}
		data := r.read()
		var d stun.RawAttribute
		if v, err := data.Get(stun.AttrData); err == nil {
			d.Value = v
		}
		if data.Type != stun.NewType(stun.MethodData, stun.ClassIndication) || string(d.Value) != "back" {
			t.Fatalf("loop %d: client got %s with DATA %q, want a Data indication with \"back\"", i, data.Type, d.Value)
		}
		if a := list[i]; a.Server != udp {
			t.Errorf("allocation %d is on %s, want the one listener %s", i, a.Server, udp)
		}
	}

	// The quota counts both loops' allocations: a third gets 508.
	third := newRawTURN(t, srv, "udp")
	if m := third.allocate("user", "pass", protoUDP); errorCodeOf(m) != 508 {
		t.Fatalf("third Allocate with 2 in all (one per loop): code %d, want 508", errorCodeOf(m))
	}

	// Nonce rotation: each client's next signed request gets 438, once.
	srv.RotateNonces()
	refresh := stun.NewType(stun.MethodRefresh, stun.ClassRequest)
	for i, r := range clients {
		m := r.do(stun.TransactionID, refresh, &r.user, &r.realm, &r.nonce, r.mi, stun.Fingerprint)
		if errorCodeOf(m) != 438 {
			t.Fatalf("loop %d: Refresh after rotation: code %d, want 438", i, errorCodeOf(m))
		}
		if err := r.nonce.GetFrom(m); err != nil {
			t.Fatal(err)
		}
		if m := r.signed(refresh); m.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("loop %d: Refresh with the fresh nonce: code %d, want success", i, errorCodeOf(m))
		}
	}

	// Expiry reaches the loop that holds each allocation: pion deletes it
	// (ExpireAllocations waits for that) and the client's Refresh gets 437.
	for i, r := range clients {
		sel := control.AllocationSelector{Client: r.conn.LocalAddr().String()}
		if gone, err := srv.ExpireAllocations(context.Background(), sel); err != nil || len(gone) != 1 {
			t.Fatalf("loop %d: ExpireAllocations = %+v, %v; want its allocation", i, gone, err)
		}
		if m := r.signed(refresh); errorCodeOf(m) != 437 {
			t.Fatalf("loop %d: Refresh after expiry: code %d, want 437", i, errorCodeOf(m))
		}
	}
	if n := len(srv.Allocations()); n != 0 {
		t.Errorf("%d allocations after expiring both, want 0", n)
	}

	// The trace names the one listener for both loops' messages.
	seen := make([]int, len(clients))
	for _, m := range srv.TraceSince(0, 0).Messages {
		for i, r := range clients {
			if m.Client.String() != r.conn.LocalAddr().String() {
				continue
			}
			seen[i]++
			if m.Listener != "udp "+udp.String() {
				t.Errorf("trace: loop %d's client's message on listener %q, want %q", i, m.Listener, "udp "+udp.String())
			}
		}
	}
	for i, n := range seen {
		if n == 0 {
			t.Errorf("trace: no message of loop %d's client", i)
		}
	}
}
