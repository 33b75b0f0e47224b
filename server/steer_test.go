package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/trace"
)

// allocateWith runs the 401 dance and the signed Allocate of a UDP relay
// with the extra attributes on both, and returns the signed one's response.
func (r *rawTURN) allocateWith(user, pass string, extra ...stun.Setter) *stun.Message {
	r.t.Helper()
	transport := r.challenge(user, pass, protoUDP, extra...)
	return r.signed(stun.NewType(stun.MethodAllocate, stun.ClassRequest), append([]stun.Setter{transport}, extra...)...)
}

// RFC 8656 EVEN-PORT / RESERVATION-TOKEN pairs across read loops: the
// EVEN-PORT Allocate is answered by one loop's pion, which keeps the
// reservation; an Allocate with its token from a client the kernel hands to
// the other loop is steered to the first, gets the reserved port + 1, and
// that client's Refresh, CreatePermission, ChannelBind, ChannelData and
// expiry all work.
func TestReadLoopsSteerReservationToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil) // two read loops
	clients := clientsOnLoops(t, srv)
	rtp, rtcp := clients[0], clients[1]

	relay0, token := evenPortAllocate(t, rtp)

	m := rtcp.allocateWith("user", "pass", stun.RawAttribute{Type: stun.AttrReservationToken, Value: token})
	if m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("RESERVATION-TOKEN Allocate on loop 1: code %d, want success (pion of loop 0 holds the reservation)", errorCodeOf(m))
	}
	var relay1 stun.XORMappedAddress
	if err := relay1.GetFromAs(m, stun.AttrXORRelayedAddress); err != nil {
		t.Fatal(err)
	}
	if relay1.Port != relay0.Port+1 {
		t.Fatalf("RESERVATION-TOKEN Allocate: relay port %d, want the reserved %d", relay1.Port, relay0.Port+1)
	}

	refresh := stun.NewType(stun.MethodRefresh, stun.ClassRequest)
	if m := rtcp.signed(refresh); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("steered Refresh: code %d, want success", errorCodeOf(m))
	}
	peerConn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peerConn.Close()
	peerAddr := peerConn.LocalAddr().(*net.UDPAddr).AddrPort()
	if m := rtcp.signed(createPermissionReq, peer(peerAddr)); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("steered CreatePermission: code %d, want success", errorCodeOf(m))
	}
	if m := rtcp.signed(channelBindReq, channelNumberAttr, peer(peerAddr)); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("steered ChannelBind: code %d, want success", errorCodeOf(m))
	}

	// ChannelData both ways, from the relay the reservation made.
	payload := []byte("rtcp")
	cd := binary.BigEndian.AppendUint16([]byte{0x40, 0x01}, uint16(len(payload)))
	if _, err := rtcp.conn.Write(append(cd, payload...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = peerConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peerConn.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], payload) {
		t.Fatalf("peer read %q, %v; want %q", buf[:n], err, payload)
	}
	if got := from.(*net.UDPAddr).Port; got != relay1.Port {
		t.Errorf("peer got the ChannelData from port %d, want the relay's %d", got, relay1.Port)
	}
	if _, err := peerConn.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	_ = rtcp.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err = rtcp.conn.Read(buf)
	if err != nil || n < 4 || !bytes.Equal(buf[:2], []byte{0x40, 0x01}) || !bytes.Equal(buf[4:n], []byte("back")) {
		t.Fatalf("client read %x, %v; want ChannelData 0x4001 with \"back\"", buf[:n], err)
	}

	// Expiry reaches the loop that holds it, and the client's Refresh then
	// gets 437.
	sel := control.AllocationSelector{Client: rtcp.conn.LocalAddr().String()}
	if gone, err := srv.ExpireAllocations(context.Background(), sel); err != nil || len(gone) != 1 {
		t.Fatalf("ExpireAllocations = %+v, %v; want the steered allocation", gone, err)
	}
	if m := rtcp.signed(refresh); errorCodeOf(m) != 437 {
		t.Fatalf("Refresh after expiry: code %d, want 437", errorCodeOf(m))
	}
	// The RTP allocation is untouched.
	if m := rtp.signed(refresh); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("RTP Refresh: code %d, want success", errorCodeOf(m))
	}
}

// A client steered by its RESERVATION-TOKEN whose Allocate got no answer (a
// rule dropped it) stays steered for the tokens' 30 s, and no longer: its
// next Allocate with the token, once the token itself has expired, is
// served by the loop that issued the token while the client is steered
// (pion there still holds the reservation: success, the reserved port + 1)
// and after 30 s by the loop the kernel picked for it (whose pion has no
// such reservation: 508). A client whose allocation came stays steered.
func TestReadLoopsSteeredClientExpires(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after time.Duration // from the dropped Allocate to the next
		code  int           // of the next: 0 success
	}{
		{"29s on, still steered", 29 * time.Second, 0},
		{"31s on, expired", 31 * time.Second, 508},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil) // two read loops
			clk := newFakeClock()
			server.SetSteerClock(srv, clk.Now)
			clients := clientsOnLoops(t, srv)
			rtp, rtcp := clients[0], clients[1]

			relay0, token := evenPortAllocate(t, rtp)
			// The token is 10 s old when its Allocate comes, so it has
			// expired by the next one either way: only the client's own
			// steering can still take that to loop 0.
			clk.Advance(10 * time.Second)

			addRule(t, srv, faults.Rule{
				ID: "drop-token", Times: 1,
				Match: faults.Match{Methods: []string{"allocate"}, Classes: []string{"request"}, Direction: "in",
					Attributes: []faults.AttributeMatch{{Type: "RESERVATION-TOKEN", Present: ptr(true)}}},
				Action: faults.Action{Type: "drop"},
			})
			rtcp.realm, rtcp.nonce, rtcp.user, rtcp.mi = rtp.realm, rtp.nonce, rtp.user, rtp.mi
			allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
			transport := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{protoUDP, 0, 0, 0}}
			withToken := stun.RawAttribute{Type: stun.AttrReservationToken, Value: token}
			lost := stun.MustBuild(stun.TransactionID, allocate, transport, withToken, &rtcp.user, &rtcp.realm, &rtcp.nonce, rtcp.mi, stun.Fingerprint)
			if _, err := rtcp.conn.Write(lost.Raw); err != nil {
				t.Fatal(err)
			}
			waitRecords(t, srv, "the RESERVATION-TOKEN Allocate dropped", 1, func(r trace.Record) bool {
				return r.Decision.Rule == "drop-token" && r.TxID == lost.TransactionID
			})

			clk.Advance(tc.after)
			m := rtcp.signed(allocate, transport, withToken)
			if got := errorCodeOf(m); got != tc.code || (tc.code == 0 && m.Type.Class != stun.ClassSuccessResponse) {
				t.Fatalf("Allocate with the token %v after the lost one: %s code %d, want code %d", tc.after, m.Type, got, tc.code)
			}
			if tc.code == 0 {
				var relay1 stun.XORMappedAddress
				if err := relay1.GetFromAs(m, stun.AttrXORRelayedAddress); err != nil {
					t.Fatal(err)
				}
				if relay1.Port != relay0.Port+1 {
					t.Fatalf("steered Allocate: relay port %d, want the reserved %d", relay1.Port, relay0.Port+1)
				}
				// Its allocation keeps it steered past 30 s (loop 1 has none
				// for it).
				clk.Advance(time.Minute)
				if m := rtcp.signed(stun.NewType(stun.MethodRefresh, stun.ClassRequest)); m.Type.Class != stun.ClassSuccessResponse {
					t.Fatalf("Refresh of the steered allocation a minute on: code %d, want success", errorCodeOf(m))
				}
			}
		})
	}
}

// evenPortAllocate makes c's Allocate with EVEN-PORT (R bit set), which must
// succeed, and returns its relayed address and the RESERVATION-TOKEN for the
// next port.
func evenPortAllocate(t *testing.T, c *rawTURN) (stun.XORMappedAddress, []byte) {
	t.Helper()
	m := c.allocateWith("user", "pass", stun.RawAttribute{Type: stun.AttrEvenPort, Value: []byte{0x80}})
	if m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("EVEN-PORT Allocate on loop 0: code %d, want success", errorCodeOf(m))
	}
	var relay stun.XORMappedAddress
	if err := relay.GetFromAs(m, stun.AttrXORRelayedAddress); err != nil {
		t.Fatal(err)
	}
	token, err := m.Get(stun.AttrReservationToken)
	if err != nil || len(token) != 8 {
		t.Fatalf("EVEN-PORT Allocate success: RESERVATION-TOKEN %x, %v; want 8 bytes", token, err)
	}
	return relay, token
}
