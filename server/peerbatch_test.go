package server

import (
	"fmt"
	"net"
	"runtime"
	"testing"
)

// TestRelayBatch queues datagrams from two peers on a relay socket before
// its first read, so that one recvmmsg takes several, and checks that pion's
// read loop gets each once, in the order sent, with its sender (one
// *net.UDPAddr per peer) and its bytes.
func TestRelayBatch(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched UDP I/O is Linux only")
	}
	t.Parallel()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	b := newRelayBatch(&guardedRelayConn{PacketConn: sock})
	if b == nil {
		t.Fatal("no batched reads on a relay *net.UDPConn on Linux")
	}
	var peers [2]*net.UDPConn
	for i := range peers {
		if peers[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		defer peers[i].Close()
	}
	const n = 2*relayBatchSize + 3 // more than two batches
	for i := range n {
		if _, err := peers[i%2].WriteTo(fmt.Appendf(nil, "datagram %d", i), sock.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1600)
	var seen [2]net.Addr
	batched := false
	for i := range n {
		k, addr, ap, err := b.readFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if b.have > 1 {
			batched = true
		}
		want := peers[i%2].LocalAddr().(*net.UDPAddr)
		if got := string(buf[:k]); got != fmt.Sprintf("datagram %d", i) {
			t.Fatalf("read %d: %q", i, got)
		}
		if ap != want.AddrPort() || addr.String() != want.String() {
			t.Errorf("read %d: from %v (%v), want %v", i, addr, ap, want)
		}
		if seen[i%2] == nil {
			seen[i%2] = addr
		} else if seen[i%2] != addr {
			t.Errorf("read %d: a new *net.UDPAddr for the same peer", i)
		}
	}
	if !batched {
		t.Log("every recvmmsg read one datagram: the loopback delivered them one by one")
	}
}
