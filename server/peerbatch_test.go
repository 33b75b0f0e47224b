package server

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
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

// TestRelayOut writes datagrams to a peer through a relay's write side
// while its listener loop has datagrams due (they wait), then when it has
// none (the queue goes first), then hands the loop's flush the rest; the
// peer gets them all once, in order, and nothing addressed to one of
// stunfault's own addresses.
func TestRelayOut(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched UDP I/O is Linux only")
	}
	t.Parallel()
	lo := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	relay, peer, self := lo(), lo(), lo()
	own := newOwnAddrs([]netip.AddrPort{self.LocalAddr().(*net.UDPAddr).AddrPort()}, nil)
	loop := &udpBatch{}
	o := newRelayOut(&guardedRelayConn{PacketConn: relay, own: func() *ownAddrs { return own }}, loop)
	if o == nil {
		t.Fatal("no write side on a relay *net.UDPConn on Linux")
	}
	to := peer.LocalAddr().(*net.UDPAddr)
	write := func(i int, dst *net.UDPAddr) {
		t.Helper()
		if n, err := o.writeTo(fmt.Appendf(nil, "datagram %d", i), dst, dst.AddrPort()); err != nil || n == 0 {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}

	loop.left.Store(2) // pion's loop has two more datagrams to handle
	for i := range 3 {
		write(i, to)
	}
	write(-1, self.LocalAddr().(*net.UDPAddr)) // dropped by the guard, queued or not
	if o.n != 3 || loop.nparks.Load() != 1 {
		t.Fatalf("%d queued, %d parked; want 3 queued on 1 parked relay", o.n, loop.nparks.Load())
	}
	loop.left.Store(0)
	write(3, to) // sends the queue first
	loop.left.Store(1)
	write(4, to)
	write(5, to)
	loop.flushPeers() // as the loop does before it reads again

	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	for i := range 6 {
		n, _, err := peer.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for datagram %d: %v", i, err)
		}
		if got, want := string(buf[:n]), fmt.Sprintf("datagram %d", i); got != want {
			t.Fatalf("the peer got %q, want %q", got, want)
		}
	}
	if o.n != 0 || loop.nparks.Load() != 0 {
		t.Errorf("after the flush: %d queued, %d parked", o.n, loop.nparks.Load())
	}
	// What reaches our own socket first is a marker sent after it all.
	if _, err := relay.WriteTo([]byte("marker"), self.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = self.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := self.ReadFrom(buf); err != nil || string(buf[:n]) != "marker" {
		t.Errorf("stunfault's own address got %q (%v), want only the marker", buf[:n], err)
	}
}
