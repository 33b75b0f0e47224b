package server

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
)

func TestOwnAddrsContains(t *testing.T) {
	t.Parallel()
	own := newOwnAddrs([]netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:3478"),
		netip.MustParseAddrPort("[::1]:3479"),
		netip.MustParseAddrPort("0.0.0.0:8478"),
		netip.MustParseAddrPort("[::]:9478"),
	}, []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")})

	tests := []struct {
		peer string
		want bool
	}{
		{"127.0.0.1:3478", true},
		{"[::ffff:127.0.0.1]:3478", true},
		{"0.0.0.0:3478", true}, // connecting to 0.0.0.0 reaches 127.0.0.1
		{"[::]:3478", true},
		{"127.0.0.2:3478", false}, // a listener on 127.0.0.1 is not on 127.0.0.2
		{"127.0.0.1:3479", false},
		{"[::1]:3479", true},
		{"[::]:3479", true},
		{"192.0.2.10:3478", false},

		// 0.0.0.0:8478: every local address on that port.
		{"127.0.0.1:8478", true},
		{"127.9.9.9:8478", true},
		{"192.0.2.10:8478", true},
		{"[::ffff:192.0.2.10]:8478", true},
		{"0.0.0.0:8478", true},
		{"192.0.2.11:8478", false}, // not local
		{"192.0.2.10:8479", false},

		// [::]:9478 (dual stack): both families.
		{"[2001:db8::10]:9478", true},
		{"[::1]:9478", true},
		{"192.0.2.10:9478", true},
		{"[2001:db8::11]:9478", false},
	}
	for _, tt := range tests {
		if got := own.contains(netip.MustParseAddrPort(tt.peer)); got != tt.want {
			t.Errorf("contains(%s) = %v, want %v", tt.peer, got, tt.want)
		}
	}
}

// TestGuardedRelay checks the relay sockets themselves: pion's permissions
// are per IP, so a permission for 127.0.0.1 must not let a Send indication
// or ChannelData reach one of stunfault's own ports, and a TCP relay must
// not dial one.
func TestGuardedRelay(t *testing.T) {
	t.Parallel()
	ownSock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ownSock.Close()
	ownAddr := ownSock.LocalAddr().(*net.UDPAddr)
	g := &relayGuard{}
	g.own.Store(newOwnAddrs([]netip.AddrPort{ownAddr.AddrPort()}, nil))

	gen, err := newRelayGenerator(configRelay(), g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.Validate(); err != nil {
		t.Fatal(err)
	}
	relay, _, err := gen.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4"})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	if n, err := relay.WriteTo([]byte("refused"), ownAddr); err != nil || n != len("refused") {
		t.Fatalf("WriteTo(own) = %d, %v; want it reported sent", n, err)
	}
	// The same socket then sends a marker the plain way: on loopback the
	// own socket reads datagrams from one sender in order, so reading the
	// marker first proves the refused one never arrived.
	if _, err := relay.(*guardedRelayConn).PacketConn.WriteTo([]byte("marker"), ownAddr); err != nil {
		t.Fatal(err)
	}
	_ = ownSock.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := ownSock.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "marker" {
		t.Fatalf("own socket read %q, %v; want the marker only", buf[:n], err)
	}

	tcpOwn := &net.TCPAddr{IP: ownAddr.IP, Port: ownAddr.Port}
	if _, err := gen.AllocateConn(turn.AllocateConnConfig{Network: "tcp4", RemoteAddr: tcpOwn}); !errors.Is(err, errOwnAddress) {
		t.Fatalf("AllocateConn(own) error = %v, want errOwnAddress", err)
	}
}

func configRelay() config.Relay {
	r := config.Default().Relay
	r.Address = "127.0.0.1"
	return r
}
