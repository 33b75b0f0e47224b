package server_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// needIPv6 skips the test when the machine has no IPv6 loopback.
func needIPv6(t *testing.T) {
	t.Helper()
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here (%v): skipping", err)
	}
	_ = pc.Close()
}

// ipv6Config listens on [::1] over UDP and TCP (one port), with the default
// relay addresses (127.0.0.1 and ::1).
func ipv6Config() config.Config {
	cfg := testConfig()
	cfg.Listen = []config.Listener{{Transport: "udp", Address: "[::1]:0"}, {Transport: "tcp", Address: "[::1]:0"}}
	return cfg
}

// echoPeer runs a UDP echo server on addr ("[::1]:0", "127.0.0.1:0") until
// the test ends.
func echoPeer(t *testing.T, addr string) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr)
}

// turnClientTo returns a pion TURN client to addr over transport, from a
// socket of addr's family, asking for family (0: the client's default).
func turnClientTo(t *testing.T, srv *server.Server, addr, transport string, family turn.RequestedAddressFamily) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	switch transport {
	case "udp":
		local := "127.0.0.1:0"
		if strings.HasPrefix(addr, "[") {
			local = "[::1]:0"
		}
		pc, err := net.ListenPacket("udp", local)
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case "tcp":
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr,
		Username: "user", Password: "pass", Realm: srv.Config().Server.Realm,
		Conn: conn, RTO: 100 * time.Millisecond, RequestedAddressFamily: family,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// ipv4UDPAddr returns the server's UDP listener on 127.0.0.1.
func ipv4UDPAddr(t *testing.T, srv *server.Server) string {
	t.Helper()
	for _, l := range srv.Listeners() {
		if l.Transport == "udp" && l.Addr.Addr().Is4() {
			return l.Addr.String()
		}
	}
	t.Fatal("no IPv4 udp listener")
	return ""
}

// roundTrip sends a datagram through relay to peer and waits for its echo.
func roundTrip(t *testing.T, relay net.PacketConn, peer net.Addr) {
	t.Helper()
	msg := []byte("hello through the relay")
	deadline := time.Now().Add(5 * time.Second)
	_ = relay.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	// The first datagram may race the permission pion's client creates on
	// its first write; resend until the echo arrives, within the deadline.
	for time.Now().Before(deadline) {
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("WriteTo %s through the relay: %v", peer, err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := relay.ReadFrom(buf)
		if err == nil {
			if string(buf[:n]) != string(msg) || from.String() != peer.String() {
				t.Fatalf("echo %q from %s, want %q from %s", buf[:n], from, msg, peer)
			}
			return
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("reading the echo: %v", err)
		}
	}
	t.Fatalf("no echo from %s within 5s", peer)
}

// TestIPv6Relays checks listeners on [::1], relays on ::1, an IPv6 relay
// asked for from IPv4 (REQUESTED-ADDRESS-FAMILY), data both ways, and
// brackets in URLs. (pion's client sends REQUESTED-ADDRESS-FAMILY only to
// ask for IPv6; without it pion relays in the listener's family.)
func TestIPv6Relays(t *testing.T) {
	needIPv6(t)
	t.Parallel()
	cfg := ipv6Config()
	cfg.Listen = append(cfg.Listen, config.Listener{Transport: "udp", Address: "127.0.0.1:0"})
	srv := startServer(t, &cfg)
	peer6, peer4 := echoPeer(t, "[::1]:0"), echoPeer(t, "127.0.0.1:0")

	tests := []struct {
		name, addr, transport string
		family                turn.RequestedAddressFamily
		wantIP                string
		peer                  *net.UDPAddr
	}{
		{"udp from ::1", srv.TURNAddr("udp").String(), "udp", 0, "::1", peer6},
		{"tcp from ::1", srv.TURNAddr("tcp").String(), "tcp", 0, "::1", peer6},
		{"udp from ::1 asking IPv6", srv.TURNAddr("udp").String(), "udp", turn.RequestedAddressFamilyIPv6, "::1", peer6},
		{"udp from 127.0.0.1", ipv4UDPAddr(t, srv), "udp", 0, "127.0.0.1", peer4},
		{"udp from 127.0.0.1 asking IPv6", ipv4UDPAddr(t, srv), "udp", turn.RequestedAddressFamilyIPv6, "::1", peer6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay, err := turnClientTo(t, srv, tt.addr, tt.transport, tt.family).Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			ra := relay.LocalAddr().(*net.UDPAddr)
			if !ra.IP.Equal(net.ParseIP(tt.wantIP)) {
				t.Fatalf("relayed address %s, want one on %s", ra, tt.wantIP)
			}
			roundTrip(t, relay, tt.peer)
		})
	}

	urls := strings.Join(srv.ICEServers()[0].URLs, " ")
	if want := "stun:" + srv.TURNAddr("udp").String(); !strings.HasPrefix(srv.TURNAddr("udp").String(), "[::1]:") || !strings.Contains(urls, want) {
		t.Errorf("ICE URLs %q, want %q with brackets", urls, want)
	}
}

// TestIPv6RulesMatch checks a rule keyed on an IPv6 source, over UDP and TCP.
func TestIPv6RulesMatch(t *testing.T) {
	needIPv6(t)
	t.Parallel()
	srv := startServer(t, ptr(ipv6Config()))
	addRule(t, srv, faults.Rule{ID: "v6-403", Match: faults.Match{Methods: []string{"binding"}, Sources: []string{"::1/128"}},
		Action: faults.Action{Type: "error", Code: 403}})
	for _, transport := range []string{"udp", "tcp"} {
		res := exchange(t, srv.TURNAddr(transport).String(), transport, stun.MustBuild(stun.TransactionID, stun.BindingRequest))
		if code := errorCode(t, res); code != 403 {
			t.Errorf("Binding from ::1 over %s: got %v (code %d), want 403", transport, res.Type, code)
		}
	}
}

// TestIPv6WithoutRelayAddress checks that with address6 = "" an IPv6
// allocation gets 440, from IPv6 or asked for from IPv4, while IPv4 ones
// still work.
func TestIPv6WithoutRelayAddress(t *testing.T) {
	needIPv6(t)
	t.Parallel()
	cfg := ipv6Config()
	cfg.Listen = append(cfg.Listen, config.Listener{Transport: "udp", Address: "127.0.0.1:0"})
	cfg.Relay.Address6 = ""
	srv := startServer(t, &cfg)
	for name, c := range map[string]*turn.Client{
		"from ::1":                turnClientTo(t, srv, srv.TURNAddr("udp").String(), "udp", 0),
		"from 127.0.0.1 for IPv6": turnClientTo(t, srv, ipv4UDPAddr(t, srv), "udp", turn.RequestedAddressFamilyIPv6),
	} {
		_, err := c.Allocate()
		var te *stun.TurnError
		if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeAddrFamilyNotSupported {
			t.Errorf("IPv6 Allocate %s with no IPv6 relay address: %v, want 440", name, err)
		}
	}
	relay, err := turnClientTo(t, srv, ipv4UDPAddr(t, srv), "udp", 0).Allocate()
	if err != nil {
		t.Fatalf("IPv4 Allocate: %v", err)
	}
	_ = relay.Close()
}

// TestExternalAddress checks that XOR-RELAYED-ADDRESS carries
// [relay].external_address while the relay is bound on the local address:
// data still flows to and from a loopback peer.
func TestExternalAddress(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Relay.ExternalAddress = "203.0.113.5"
	srv := startServer(t, &cfg)
	relay, err := newTURNClient(t, srv, "udp", "user", "pass").Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if ra := relay.LocalAddr().(*net.UDPAddr); !ra.IP.Equal(net.ParseIP("203.0.113.5")) || ra.Port < 49152 {
		t.Fatalf("relayed address %s, want 203.0.113.5 and a port of the relay range", ra)
	}
	roundTrip(t, relay, echoPeer(t, "127.0.0.1:0"))
}

func TestRelayAddressConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		set  func(*config.Relay)
		want string
	}{
		{"address6 same family", func(r *config.Relay) { r.Address = "fd00::1" }, "relay.address6: ::1 is of the same family as relay.address (fd00::1)"},
		{"address6 not an IP", func(r *config.Relay) { r.Address6 = "localhost" }, `relay.address6: invalid IP address "localhost"`},
		{"external family", func(r *config.Relay) { r.ExternalAddress = "2001:db8::1" }, "relay.external_address: 2001:db8::1 is not of relay.address's family (127.0.0.1)"},
		{"external6 without address6", func(r *config.Relay) { r.Address6 = ""; r.ExternalAddress6 = "2001:db8::1" }, "relay.external_address6: is set but relay.address6 is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.set(&cfg.Relay)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCoturnUclientOverIPv6 relays coturn's uclient over [::1], UDP and
// TCP, to a turnutils_peer on ::1, with 0 lost.
func TestCoturnUclientOverIPv6(t *testing.T) {
	needIPv6(t)
	t.Parallel()
	needTool(t, "turnutils_uclient")
	srv := startServer(t, ptr(ipv6Config()))
	peerPort := startPeerOn(t, "::1")
	const messages = 20
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			a := srv.TURNAddr(transport)
			args := []string{"-c", "-n", strconv.Itoa(messages), "-u", "user", "-w", "pass",
				"-p", strconv.Itoa(int(a.Port())), "-e", "::1", "-r", strconv.Itoa(peerPort)}
			if transport == "tcp" {
				args = append([]string{"-t"}, args...)
			}
			out := runTool(t, "turnutils_uclient", append(args, "::1")...)
			checkUclient(t, out, messages)
		})
	}
}
