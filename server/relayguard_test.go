package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// rawTURN is a TURN client built from pion/stun messages, so a test sees
// exactly what comes back on the wire (pion's client hides some codes and
// retries others).
type rawTURN struct {
	t     *testing.T
	conn  net.Conn
	tcp   bool
	realm stun.Realm
	nonce stun.Nonce
	user  stun.Username
	mi    stun.MessageIntegrity
}

func newRawTURN(t *testing.T, srv *server.Server, transport string) *rawTURN {
	t.Helper()
	c, err := net.Dial(transport, turnAddr(t, srv, transport))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawTURN{t: t, conn: c, tcp: transport == "tcp"}
}

// do sends one request built from setters and returns the response.
func (r *rawTURN) do(setters ...stun.Setter) *stun.Message {
	r.t.Helper()
	req := stun.MustBuild(setters...)
	_ = r.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.conn.Write(req.Raw); err != nil {
		r.t.Fatalf("write: %v", err)
	}
	for {
		res := r.read()
		if res.TransactionID == req.TransactionID {
			return res
		}
	}
}

func (r *rawTURN) read() *stun.Message {
	r.t.Helper()
	buf := make([]byte, 1500)
	var n int
	var err error
	if r.tcp {
		if _, err = io.ReadFull(r.conn, buf[:20]); err == nil {
			l := int(binary.BigEndian.Uint16(buf[2:4]))
			_, err = io.ReadFull(r.conn, buf[20:20+l])
			n = 20 + l
		}
	} else {
		n, err = r.conn.Read(buf)
	}
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil {
		r.t.Fatalf("decode response: %v", err)
	}
	return m
}

// signed sends a signed request of typ with attrs and returns the response,
// after checking that an error response carries a MESSAGE-INTEGRITY made
// with the user's key (pion's client ignores one that does not).
func (r *rawTURN) signed(typ stun.MessageType, attrs ...stun.Setter) *stun.Message {
	r.t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, typ}, attrs...)
	setters = append(setters, &r.user, &r.realm, &r.nonce, r.mi, stun.Fingerprint)
	res := r.do(setters...)
	if res.Type.Class == stun.ClassErrorResponse {
		if err := r.mi.Check(res); err != nil {
			r.t.Errorf("%s error response: MESSAGE-INTEGRITY does not check with the user's key: %v", typ, err)
		}
	}
	return res
}

// allocate runs the 401 dance and the signed Allocate for protocol
// (17 UDP, 6 TCP), and returns the response to the signed one.
func (r *rawTURN) allocate(user, pass string, protocol byte) *stun.Message {
	r.t.Helper()
	transport := r.challenge(user, pass, protocol)
	return r.signed(stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport)
}

// challenge sends an unsigned Allocate for protocol, which must get 401,
// and keeps its realm and nonce to sign the next requests as user with
// pass; the client has no allocation yet. extra go on the Allocate after
// REQUESTED-TRANSPORT. It returns the REQUESTED-TRANSPORT attribute it sent.
func (r *rawTURN) challenge(user, pass string, protocol byte, extra ...stun.Setter) stun.RawAttribute {
	r.t.Helper()
	transport := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{protocol, 0, 0, 0}}
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport}, extra...)
	res := r.do(append(setters, stun.Fingerprint)...)
	if got := errorCodeOf(res); got != 401 {
		r.t.Fatalf("unsigned Allocate: got %s code %d, want 401", res.Type, got)
	}
	if err := r.realm.GetFrom(res); err != nil {
		r.t.Fatal(err)
	}
	if err := r.nonce.GetFrom(res); err != nil {
		r.t.Fatal(err)
	}
	r.user = stun.NewUsername(user)
	r.mi = stun.NewLongTermIntegrity(user, r.realm.String(), pass)
	return transport
}

func errorCodeOf(m *stun.Message) int {
	var ec stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return int(ec.Code)
}

func peer(a netip.AddrPort) stun.Setter {
	return &xorPeer{net.UDPAddrFromAddrPort(a)}
}

var (
	methodConnect       = stun.Method(0x000a)
	createPermissionReq = stun.NewType(stun.MethodCreatePermission, stun.ClassRequest)
	channelBindReq      = stun.NewType(stun.MethodChannelBind, stun.ClassRequest)
	connectReq          = stun.NewType(methodConnect, stun.ClassRequest)
	protoUDP, protoTCP  = byte(17), byte(6)
	channelNumberAttr   = stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}}
)

// TestRelayGuardCodes asserts what each request that could reach behind
// the server gets, on the wire.
func TestRelayGuardCodes(t *testing.T) {
	t.Parallel()
	off := startServer(t, nil)
	cfgOn := testConfig()
	cfgOn.Relay.TCPAllocations = true
	on := startServer(t, &cfgOn)

	// A loopback peer that is not stunfault: allowed by the default allow_peers.
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherAddr := other.LocalAddr().(*net.UDPAddr).AddrPort()
	outside := netip.MustParseAddrPort("192.0.2.1:80") // TEST-NET-1: outside allow_peers

	own := func(srv *server.Server, what string) netip.AddrPort {
		switch what {
		case "http":
			return srv.HTTPAddr()
		case "0.0.0.0:http":
			return netip.AddrPortFrom(netip.IPv4Unspecified(), srv.HTTPAddr().Port())
		case "::ffff:http":
			return netip.AddrPortFrom(netip.AddrFrom16(srv.HTTPAddr().Addr().As16()), srv.HTTPAddr().Port())
		}
		a := srv.TURNAddr(what)
		return a
	}

	tests := []struct {
		name      string
		tcpAllocs bool   // which server
		transport string // control connection
		alloc     byte   // REQUESTED-TRANSPORT
		req       stun.MessageType
		peer      string // "other", "outside" or an own address (see own)
		want      int    // 0 = success
	}{
		{"TCP allocation off over tcp", false, "tcp", protoTCP, stun.MessageType{}, "", 442},
		{"TCP allocation off over udp", false, "udp", protoTCP, stun.MessageType{}, "", 442},
		{"TCP allocation on", true, "tcp", protoTCP, stun.MessageType{}, "", 0},
		{"TCP allocation on over udp", true, "udp", protoTCP, stun.MessageType{}, "", 400},
		{"UDP allocation", false, "udp", protoUDP, stun.MessageType{}, "", 0},

		{"CreatePermission to other peer", false, "udp", protoUDP, createPermissionReq, "other", 0},
		{"CreatePermission outside allow_peers", false, "udp", protoUDP, createPermissionReq, "outside", 403},
		{"CreatePermission to http", false, "udp", protoUDP, createPermissionReq, "http", 403},
		{"CreatePermission to 0.0.0.0:http", false, "udp", protoUDP, createPermissionReq, "0.0.0.0:http", 403},
		{"CreatePermission to ::ffff:http", false, "udp", protoUDP, createPermissionReq, "::ffff:http", 403},
		{"CreatePermission to udp listener", false, "udp", protoUDP, createPermissionReq, "udp", 403},
		{"CreatePermission to tcp listener", false, "tcp", protoUDP, createPermissionReq, "tcp", 403},

		{"ChannelBind to other peer", false, "udp", protoUDP, channelBindReq, "other", 0},
		{"ChannelBind outside allow_peers", false, "udp", protoUDP, channelBindReq, "outside", 401},
		{"ChannelBind to http", false, "udp", protoUDP, channelBindReq, "http", 403},
		{"ChannelBind to udp listener", false, "tcp", protoUDP, channelBindReq, "udp", 403},

		{"Connect outside allow_peers", true, "tcp", protoTCP, connectReq, "outside", 403},
		{"Connect to http", true, "tcp", protoTCP, connectReq, "http", 403},
		{"Connect to 0.0.0.0:http", true, "tcp", protoTCP, connectReq, "0.0.0.0:http", 403},
		{"Connect to tcp listener", true, "tcp", protoTCP, connectReq, "tcp", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := off
			if tt.tcpAllocs {
				srv = on
			}
			c := newRawTURN(t, srv, tt.transport)
			res := c.allocate("user", "pass", tt.alloc)
			if tt.req == (stun.MessageType{}) {
				if got := errorCodeOf(res); got != tt.want || (tt.want == 0 && res.Type.Class != stun.ClassSuccessResponse) {
					t.Fatalf("Allocate: got %s code %d, want code %d", res.Type, got, tt.want)
				}
				return
			}
			if res.Type.Class != stun.ClassSuccessResponse {
				t.Fatalf("Allocate: got %s code %d, want success", res.Type, errorCodeOf(res))
			}
			var p netip.AddrPort
			switch tt.peer {
			case "other":
				p = otherAddr
			case "outside":
				p = outside
			default:
				p = own(srv, tt.peer)
			}
			attrs := []stun.Setter{peer(p)}
			if tt.req == channelBindReq {
				attrs = append(attrs, channelNumberAttr)
			}
			res = c.signed(tt.req, attrs...)
			if got := errorCodeOf(res); got != tt.want || (tt.want == 0 && res.Type.Class != stun.ClassSuccessResponse) {
				t.Errorf("%s to %s: got %s code %d, want code %d", tt.req, p, res.Type, got, tt.want)
			}
		})
	}
}

// TestRelayGuardPionClient drives the refusals through pion's own TURN
// client, as an application would meet them.
func TestRelayGuardPionClient(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)

	t.Run("AllocateTCP gets 442", func(t *testing.T) {
		t.Parallel()
		c := newTURNClient(t, srv, "tcp", "user", "pass")
		alloc, err := c.AllocateTCP()
		if err == nil {
			_ = alloc.Close()
			t.Fatal("AllocateTCP succeeded with [relay].tcp_allocations off")
		}
		var te *stun.TurnError
		if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnsupportedTransProto {
			t.Fatalf("AllocateTCP: %v, want a 442 error response", err)
		}
	})
	t.Run("Dial through a TCP relay to the HTTP side gets 403", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.Relay.TCPAllocations = true
		on := startServer(t, &cfg)
		c := newTURNClient(t, on, "tcp", "user", "pass")
		alloc, err := c.AllocateTCP()
		if err != nil {
			t.Fatalf("AllocateTCP: %v", err)
		}
		defer alloc.Close()
		conn, err := alloc.Dial("tcp", on.HTTPAddr().String())
		if err == nil {
			_ = conn.Close()
			t.Fatal("Dial to the HTTP side through the relay succeeded")
		}
		var te *stun.TurnError
		if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
			t.Fatalf("Dial(%s): %v, want a 403 error response", on.HTTPAddr(), err)
		}
	})
	t.Run("CreatePermission to the HTTP side gets 403", func(t *testing.T) {
		t.Parallel()
		c := newTURNClient(t, srv, "udp", "user", "pass")
		relay, err := c.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		err = c.CreatePermission(net.UDPAddrFromAddrPort(srv.HTTPAddr()))
		var te *stun.TurnError
		if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
			t.Fatalf("CreatePermission(%s): %v, want a 403 error response", srv.HTTPAddr(), err)
		}
	})
}

// TestTCPAllocationEndToEnd relays a TCP connection (RFC 6062: Allocate
// for TCP, Connect, ConnectionBind) with pion's client when
// [relay].tcp_allocations is on, both ways, with bytes that would look
// like ChannelData to a STUN framer: after ConnectionBind the stream is the
// peer's, not STUN.
func TestTCPAllocationEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Relay.TCPAllocations = true
	// Short connection timeouts: a data connection is exempt from both.
	timeout := 100 * time.Millisecond
	cfg.Server.TCPFrameTimeout = faults.Duration(timeout)
	cfg.Server.TCPIdleTimeout = faults.Duration(timeout)
	srv := startServer(t, &cfg)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()

	c := newTURNClient(t, srv, "tcp", "user", "pass")
	alloc, err := c.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	defer alloc.Close()
	conn, err := alloc.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("Dial through the TCP relay: %v", err)
	}
	defer conn.Close()
	peerConn, ok := <-accepted
	if !ok {
		t.Fatal("the peer accepted nothing")
	}
	defer peerConn.Close()
	if from := peerConn.RemoteAddr().(*net.TCPAddr); from.Port < cfg.Relay.MinPort || from.Port > cfg.Relay.MaxPort {
		t.Errorf("peer connection from %s, want a relay port", from)
	}

	deadline := time.Now().Add(5 * time.Second)
	_ = conn.SetDeadline(deadline)
	_ = peerConn.SetDeadline(deadline)
	exchange := []struct {
		name     string
		from, to net.Conn
		data     []byte
	}{
		// "H" is 0x48: to a STUN framer, a ChannelData header (channel
		// 0x4865) announcing 25964 bytes.
		{"client to peer", conn, peerConn, []byte("Hello peer, this is not STUN")},
		{"peer to client", peerConn, conn, []byte("Hello client")},
	}
	for round := range 2 {
		if round == 1 {
			// The data connection is now in the middle of what looks
			// like a ChannelData message, and has no allocation of its
			// own: it must outlive both timeouts. (This wait is what is
			// tested, not a synchronisation.)
			time.Sleep(3 * timeout)
		}
		for _, dir := range exchange {
			if _, err := dir.from.Write(dir.data); err != nil {
				t.Fatalf("round %d, %s: write: %v", round, dir.name, err)
			}
			got := make([]byte, len(dir.data))
			if _, err := io.ReadFull(dir.to, got); err != nil {
				t.Fatalf("round %d, %s: read: %v", round, dir.name, err)
			}
			if !bytes.Equal(got, dir.data) {
				t.Errorf("%s: got %q, want %q", dir.name, got, dir.data)
			}
		}
	}
}
