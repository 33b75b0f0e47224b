package server

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// BenchmarkPeerConnPassThrough measures what the peer-leg wrapper (the
// engine's question and the counters of /metrics and GET /trace) adds to a
// relayed datagram no peer-leg rule fires on, in and out: the target is 0
// allocations. "bare" is the socket without the wrapper.
func BenchmarkPeerConnPassThrough(b *testing.B) {
	media := make([]byte, 160) // a 20 ms G.711 frame
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	for _, n := range []int{0, 10} {
		// Peer-leg rules for other peers: asked, none fires.
		ic := benchInterceptor(b, n, func(i int) faults.Match {
			return faults.Match{Leg: "peer", Peers: []string{fmt.Sprintf("10.0.%d.1/32", i)}}
		})
		mem := &memPacketConn{data: media, from: peer}
		relay := netip.MustParseAddrPort("127.0.0.1:50000")
		pc := newPeerConn(mem, ic, relay, relay)
		buf := make([]byte, 1600)
		b.Run(fmt.Sprintf("bare/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k, addr, _ := mem.ReadFrom(buf)
				_, _ = mem.WriteTo(buf[:k], addr)
			}
		})
		b.Run(fmt.Sprintf("wrapped/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k, addr, _ := pc.ReadFrom(buf)
				_, _ = pc.WriteTo(buf[:k], addr)
			}
			if got := ic.peers.totals().n[faults.In][faults.Pass]; got < uint64(b.N) {
				b.Fatalf("counted %d datagrams in, want at least %d", got, b.N)
			}
		})
	}
}
