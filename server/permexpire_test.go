package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// waitTimeout bounds every wait of these tests for a datagram or a change.
const waitTimeout = 5 * time.Second

// recvFrom reads one datagram from pc within waitTimeout and checks that it
// is want, from from (any sender when from is nil).
func recvFrom(t *testing.T, pc net.PacketConn, want string, from net.Addr) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = pc.SetReadDeadline(time.Now().Add(waitTimeout))
	n, addr, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("%s: waiting for %q: %v", pc.LocalAddr(), want, err)
	}
	if string(buf[:n]) != want || (from != nil && addr.String() != from.String()) {
		t.Fatalf("%s: got %q from %s, want %q from %v", pc.LocalAddr(), buf[:n], addr, want, from)
	}
}

// nothingMore checks that pc has nothing to read. Call it once a marker
// sent after what must not arrive has arrived elsewhere: both left on the
// same ordered path, so what was not dropped is already in pc's buffer.
func nothingMore(t *testing.T, pc net.PacketConn) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if n, addr, err := pc.ReadFrom(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: got %q from %v (%v), want nothing: it should have been dropped", pc.LocalAddr(), buf[:max(n, 0)], addr, err)
	}
}

// waitAllocations waits, on the trace, until the server's allocations
// satisfy ok.
func waitAllocations(t *testing.T, srv *server.Server, what string, ok func([]control.Allocation) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		changed := srv.Trace().Changed()
		if ok(srv.Allocations()) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waiting for %s: allocations are %+v", what, srv.Allocations())
		}
	}
}

func permissionPeers(a control.Allocation) []string {
	var out []string
	for _, p := range a.Permissions {
		out = append(out, p.Peer.String())
	}
	return out
}

// A pion TURN client with permissions (and the channels it binds itself)
// for two peers: once the permission for one expires, that peer's
// datagrams stop reaching the client and the client's stop reaching it,
// while the other peer's flow; a CreatePermission restores it.
// relayToTwoPeers allocates with a pion TURN client over transport and
// gives it permissions for two peers on 127.0.0.1 and 127.0.0.2: the one a
// test will lose, and a marker whose datagrams show what still flows.
func relayToTwoPeers(t *testing.T, srv *server.Server, transport string) (pc *turn.Client, relay net.PacketConn, lost, marker net.PacketConn) {
	t.Helper()
	pc = newTURNClient(t, srv, transport, "user", "pass")
	relay, err := pc.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	lost, marker = listenPeer(t, "127.0.0.1"), listenPeer(t, "127.0.0.2")
	if err := pc.CreatePermission(lost.LocalAddr(), marker.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	return pc, relay, lost, marker
}

func TestExpirePermission(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			c := dialControl(t, srv.ControlURL())
			ctx := context.Background()
			pc, relay, lost, marker := relayToTwoPeers(t, srv, transport)
			exchange := func(peer net.PacketConn, what string) {
				t.Helper()
				if _, err := relay.WriteTo([]byte("to "+what), peer.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				recvFrom(t, peer, "to "+what, relay.LocalAddr())
				if _, err := peer.WriteTo([]byte("from "+what), relay.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				recvFrom(t, relay, "from "+what, peer.LocalAddr())
			}
			exchange(lost, "lost")
			exchange(marker, "marker")
			// pion binds a channel to each peer after its first write:
			// let those finish (a ChannelBind refreshes the permission).
			waitAllocations(t, srv, "two channels", func(l []control.Allocation) bool { return len(l) == 1 && len(l[0].Channels) == 2 })

			sel := control.PermissionSelector{AllocationSelector: control.AllocationSelector{Username: "user"}, Peer: "127.0.0.1"}
			got, err := c.ExpirePermissions(ctx, sel)
			if err != nil || len(got) != 1 || got[0].Peer.String() != "127.0.0.1" || got[0].Relay.String() != relay.LocalAddr().String() {
				t.Fatalf("permissions.expire = %+v, %v; want the permission for 127.0.0.1 of relay %s", got, err, relay.LocalAddr())
			}
			if l := srv.Allocations(); len(l) != 1 || len(l[0].Permissions) != 1 || l[0].Permissions[0].Peer.String() != "127.0.0.2" || len(l[0].Channels) != 2 {
				t.Errorf("after expiry the list is %+v, want only 127.0.0.2's permission (and both channels)", l)
			}
			if _, err := c.ExpirePermissions(ctx, sel); control.ErrorCode(err) != control.CodeUnknownAllocation || !isField(err, "peer") {
				t.Errorf("expiring it again: %v, want unknown_allocation on peer", err)
			}

			// The client's data to the peer stops; the marker after it arrives.
			for _, to := range []net.PacketConn{lost, marker} {
				if _, err := relay.WriteTo([]byte("to "+to.LocalAddr().String()), to.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			recvFrom(t, marker, "to "+marker.LocalAddr().String(), relay.LocalAddr())
			nothingMore(t, lost)
			// The peer's data to the client stops: the marker comes first.
			for _, from := range []net.PacketConn{lost, marker} {
				if _, err := from.WriteTo([]byte("from "+from.LocalAddr().String()), relay.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			recvFrom(t, relay, "from "+marker.LocalAddr().String(), marker.LocalAddr())
			nothingMore(t, relay)

			// A CreatePermission that pion answers with success restores it.
			if err := pc.CreatePermission(lost.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			exchange(lost, "lost again")
			if l := srv.Allocations(); len(l) != 1 || len(permissionPeers(l[0])) != 2 {
				t.Errorf("after CreatePermission the list is %+v, want both permissions", l)
			}
		})
	}
}

// channelData is a ChannelData message on number n, padded to 4 bytes
// (required on TCP, allowed on UDP).
func channelData(n uint16, data string) []byte {
	b := binary.BigEndian.AppendUint16(nil, n)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data))) //nolint:gosec // short test data
	b = append(b, data...)
	return append(b, make([]byte, (4-len(data)%4)%4)...)
}

// readRaw reads the next message a raw client gets, within waitTimeout: a
// datagram, or on TCP one STUN or (padded) ChannelData frame.
func readRaw(t *testing.T, r *rawTURN) []byte {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if !r.tcp {
		buf := make([]byte, 1500)
		n, err := r.conn.Read(buf)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		return buf[:n]
	}
	head := make([]byte, 4)
	if _, err := io.ReadFull(r.conn, head); err != nil {
		t.Fatalf("client: %v", err)
	}
	n := int(binary.BigEndian.Uint16(head[2:]))
	if head[0]>>6 == 1 { // ChannelData
		n = (n + 3) &^ 3
	} else {
		n += 16 // the rest of the STUN header
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(r.conn, rest); err != nil {
		t.Fatalf("client: %v", err)
	}
	return append(head, rest...)
}

// A channel binding expires: the client's ChannelData on it is dropped,
// the peer's data reaches the client as Data indications (its permission
// lives), a ChannelBind of the number to another peer gets pion's 400, and
// one to the same peer restores it.
func TestExpireChannel(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testExpireChannel(t, transport)
		})
	}
}

func testExpireChannel(t *testing.T, transport string) {
	srv := startServer(t, nil)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	raw := newRawTURN(t, srv, transport)
	res := raw.allocate("user", "pass", protoUDP)
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
		t.Fatalf("Allocate: %v (code %d)", err, errorCodeOf(res))
	}
	relay := &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}
	lost, marker := listenPeer(t, "127.0.0.1"), listenPeer(t, "127.0.0.2")
	lostAddr := lost.LocalAddr().(*net.UDPAddr).AddrPort()
	markerAddr := marker.LocalAddr().(*net.UDPAddr).AddrPort()
	const number = 0x4001 // channelNumberAttr's
	if m := raw.signed(createPermissionReq, peer(markerAddr)); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("CreatePermission: code %d", errorCodeOf(m))
	}
	if m := raw.signed(channelBindReq, channelNumberAttr, peer(lostAddr)); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("ChannelBind: code %d", errorCodeOf(m))
	}
	send := func(b []byte) {
		t.Helper()
		if _, err := raw.conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	markerSend := func(data string) []byte {
		return stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peer(markerAddr),
			stun.RawAttribute{Type: stun.AttrData, Value: []byte(data)}).Raw
	}
	flows := func(what string) {
		t.Helper()
		send(channelData(number, "to "+what))
		recvFrom(t, lost, "to "+what, relay)
		if _, err := lost.WriteTo([]byte("from "+what), relay); err != nil {
			t.Fatal(err)
		}
		// pion pads ChannelData to 4 bytes, on UDP too.
		if got, want := readRaw(t, raw), channelData(number, "from "+what); !bytes.Equal(got, want) {
			t.Fatalf("client got % x, want the ChannelData % x", got, want)
		}
	}
	flows("bound")

	got, err := c.ExpireChannels(ctx, control.ChannelSelector{AllocationSelector: control.AllocationSelector{Client: raw.conn.LocalAddr().String()}, Channel: number})
	if err != nil || len(got) != 1 || got[0].Number != number || got[0].Peer != lostAddr {
		t.Fatalf("channels.expire = %+v, %v; want channel %#x to %s", got, err, number, lostAddr)
	}
	if l := srv.Allocations(); len(l) != 1 || len(l[0].Channels) != 0 || len(l[0].Permissions) != 2 {
		t.Errorf("after expiry the list is %+v, want no channel and both permissions", l)
	}

	// The client's ChannelData on it is dropped; a Send to the marker peer
	// after it arrives.
	send(channelData(number, "lost"))
	send(markerSend("marker"))
	recvFrom(t, marker, "marker", relay)
	nothingMore(t, lost)
	// The peer's data comes as a Data indication from it.
	if _, err := lost.WriteTo([]byte("unbound"), relay); err != nil {
		t.Fatal(err)
	}
	m := &stun.Message{Raw: readRaw(t, raw)}
	var from stun.XORMappedAddress
	if err := m.Decode(); err != nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
		t.Fatalf("client got % x (%v), want a Data indication", m.Raw, err)
	}
	data, _ := m.Get(stun.AttrData)
	if err := from.GetFromAs(m, stun.AttrXORPeerAddress); err != nil || string(data) != "unbound" || from.String() != lostAddr.String() {
		t.Errorf("Data indication from %s (%v) with %q, want %q from %s", from, err, data, "unbound", lostAddr)
	}

	// The number to another peer: pion still has it bound, and says 400.
	if m := raw.signed(channelBindReq, channelNumberAttr, peer(markerAddr)); errorCodeOf(m) != 400 {
		t.Errorf("ChannelBind of %#x to another peer: code %d, want pion's 400", number, errorCodeOf(m))
	}
	// The same number to the same peer restores it.
	if m := raw.signed(channelBindReq, channelNumberAttr, peer(lostAddr)); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("ChannelBind again: code %d", errorCodeOf(m))
	}
	flows("bound again")
	if l := srv.Allocations(); len(l) != 1 || len(l[0].Channels) != 1 {
		t.Errorf("after ChannelBind the list is %+v, want the channel back", l)
	}
}

// What permissions.expire and channels.expire answer to bad input.
func TestExpirePermissionBadInput(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	pc := newTURNClient(t, srv, "udp", "user", "pass")
	relay, err := pc.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	user := control.AllocationSelector{Username: "user"}
	for _, tt := range []struct {
		name        string
		call        func() error
		code, field string
	}{
		{"peer not an IP", func() error {
			_, err := c.ExpirePermissions(ctx, control.PermissionSelector{AllocationSelector: user, Peer: "nonsense"})
			return err
		}, control.CodeBadRequest, "peer"},
		{"no selector", func() error {
			_, err := c.ExpirePermissions(ctx, control.PermissionSelector{Peer: "127.0.0.1"})
			return err
		}, control.CodeBadRequest, "client"},
		{"unknown user", func() error {
			_, err := c.ExpirePermissions(ctx, control.PermissionSelector{AllocationSelector: control.AllocationSelector{Username: "nobody"}, Peer: "127.0.0.1"})
			return err
		}, control.CodeUnknownAllocation, "username"},
		{"no such permission", func() error {
			_, err := c.ExpirePermissions(ctx, control.PermissionSelector{AllocationSelector: user, Peer: "127.0.0.1"})
			return err
		}, control.CodeUnknownAllocation, "peer"},
		{"channel out of range", func() error {
			_, err := c.ExpireChannels(ctx, control.ChannelSelector{AllocationSelector: user, Channel: 5})
			return err
		}, control.CodeBadRequest, "channel"},
		{"no such channel", func() error {
			_, err := c.ExpireChannels(ctx, control.ChannelSelector{AllocationSelector: control.AllocationSelector{All: true}, Channel: 0x4000})
			return err
		}, control.CodeUnknownAllocation, "channel"},
		{"unknown client", func() error {
			_, err := c.ExpireChannels(ctx, control.ChannelSelector{AllocationSelector: control.AllocationSelector{Client: "127.0.0.1:1"}, Channel: 0x4000})
			return err
		}, control.CodeUnknownAllocation, "client"},
	} {
		if err := tt.call(); control.ErrorCode(err) != tt.code || !isField(err, tt.field) {
			t.Errorf("%s: %v, want %s on %s", tt.name, err, tt.code, tt.field)
		}
	}
	// The Go API says why too.
	if _, err := srv.ExpirePermissions(ctx, control.PermissionSelector{AllocationSelector: user, Peer: "127.0.0.9"}); !errors.Is(err, control.ErrUnknownPermission) {
		t.Errorf("ExpirePermissions with no such permission: %v, want ErrUnknownPermission", err)
	}
	if _, err := srv.ExpireChannels(ctx, control.ChannelSelector{AllocationSelector: user, Channel: 0x4000}); !errors.Is(err, control.ErrUnknownChannel) {
		t.Errorf("ExpireChannels with no such binding: %v, want ErrUnknownChannel", err)
	}
	if _, err := srv.ExpirePermissions(ctx, control.PermissionSelector{AllocationSelector: control.AllocationSelector{All: true}, Peer: "::1"}); !errors.Is(err, control.ErrUnknownPermission) {
		t.Errorf("ExpirePermissions ::1: %v, want ErrUnknownPermission", err)
	}
}

func isField(err error, field string) bool {
	var ce *control.Error
	return errors.As(err, &ce) && ce.Field == field
}

// lifetime_left is what pion granted: the LIFETIME of its last Allocate or
// Refresh success (a client's shorter LIFETIME is granted; one of an hour
// or more gets the default).
func TestAllocationLifetimeLeftIsGranted(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	raw := newRawTURN(t, srv, "udp")
	if m := raw.allocate("user", "pass", protoUDP); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate: code %d", errorCodeOf(m))
	}
	def := srv.Config().Relay.AllocationLifetime.D()
	left := func() time.Duration {
		t.Helper()
		l := srv.Allocations()
		if len(l) != 1 {
			t.Fatalf("allocations: %+v, want 1", l)
		}
		return l[0].LifetimeLeft.D()
	}
	refresh := func(secs uint32) {
		t.Helper()
		lt := stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, secs)}
		if m := raw.signed(stun.NewType(stun.MethodRefresh, stun.ClassRequest), lt); m.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("Refresh LIFETIME %d: code %d", secs, errorCodeOf(m))
		}
	}
	for _, tt := range []struct {
		name string
		secs uint32 // 0: none, the Allocate's
		want time.Duration
	}{
		{"Allocate", 0, def},
		{"Refresh 120 s", 120, 120 * time.Second},
		{"Refresh 2 h", 7200, def},
	} {
		if tt.secs != 0 {
			refresh(tt.secs)
		}
		if got := left(); got > tt.want || got < tt.want-5*time.Second {
			t.Errorf("%s: lifetime_left %s, want just under %s", tt.name, got, tt.want)
		}
	}
}
