package server_test

import (
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/vnet"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// TestCallerSuppliedSocketBehindNAT runs stunfault on a socket of pion's
// vnet virtual network, given with WithPacketConn, and a pion STUN client
// behind the virtual network's NAT: the client's reflexive address is the
// NAT's, and a rule fires on its Binding as on a real socket. Nothing here
// leaves the process: vnet routes in memory.
func TestCallerSuppliedSocketBehindNAT(t *testing.T) {
	t.Parallel()
	const (
		serverIP = "203.0.113.10" // TEST-NET-3: the virtual WAN
		natIP    = "203.0.113.1"  // the NAT's outside address, on the same virtual WAN
	)
	logs := logging.NewDefaultLoggerFactory()
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "203.0.113.0/24", LoggerFactory: logs})
	if err != nil {
		t.Fatal(err)
	}
	serverNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{serverIP}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddNet(serverNet); err != nil {
		t.Fatal(err)
	}
	lan, err := vnet.NewRouter(&vnet.RouterConfig{
		CIDR:          "192.168.1.0/24",
		StaticIPs:     []string{natIP},
		NATType:       &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointIndependent},
		LoggerFactory: logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddRouter(lan); err != nil {
		t.Fatal(err)
	}
	clientNet, err := vnet.NewNet(&vnet.NetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lan.AddNet(clientNet); err != nil {
		t.Fatal(err)
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })

	pc, err := serverNet.ListenPacket("udp4", serverIP+":3478")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Listen = nil // only the caller's socket
	srv := startServer(t, &cfg, server.WithPacketConn(pc))
	if ls := srv.Listeners(); len(ls) != 1 || ls[0].Transport != "udp" || ls[0].Addr.String() != serverIP+":3478" {
		t.Fatalf("Listeners() = %+v, want the one vnet socket", ls)
	}
	addRule(t, srv, faults.Rule{ID: "seen", Match: faults.Match{Methods: []string{"binding"}, Sources: []string{natIP + "/32"}}, Action: faults.Action{Type: "pass"}})

	conn, err := clientNet.Dial("udp4", serverIP+":3478")
	if err != nil {
		t.Fatal(err)
	}
	c, err := stun.NewClient(conn, stun.WithRTO(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	res, err := stunBinding(t, c)
	if err != nil {
		t.Fatalf("Binding over vnet: %v", err)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err != nil {
		t.Fatalf("no XOR-MAPPED-ADDRESS: %v", err)
	}
	if !xor.IP.Equal(net.ParseIP(natIP)) {
		t.Errorf("reflexive address %s, want the NAT's %s", xor.IP, natIP)
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "seen"}); n != 1 {
		t.Errorf("the rule on the NAT's address fired %d times, want 1", n)
	}
}

// TestCallerSuppliedSocketsNeedNoListenEntry checks that a config without
// [[listen]] is refused on its own but served with caller sockets.
func TestCallerSuppliedSocketsNeedNoListenEntry(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = nil
	if _, err := server.New(cfg); err == nil {
		t.Fatal("New accepted a config with no listener and no caller socket")
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, &cfg, server.WithPacketConn(pc), server.WithListener(ln))
	for _, transport := range []string{"udp", "tcp"} {
		res, err := stunBinding(t, newSTUNClient(t, srv, transport))
		if err != nil || res.Type != stun.BindingSuccess {
			t.Errorf("Binding over the caller's %s socket: %v, %v", transport, res, err)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); err == nil {
		t.Error("the caller's PacketConn is still open after Close")
	}
}
