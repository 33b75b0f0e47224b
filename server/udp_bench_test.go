package server

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/trace"
)

// memPacketConn answers every ReadFrom at once with the same datagram and
// discards writes: a socket with no kernel in it, to measure the wrapper.
type memPacketConn struct {
	data []byte
	from *net.UDPAddr
}

func (m *memPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	return copy(p, m.data), m.from, nil
}
func (m *memPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) { return len(p), nil }
func (m *memPacketConn) Close() error                              { return nil }
func (m *memPacketConn) LocalAddr() net.Addr                       { return m.from }
func (m *memPacketConn) SetDeadline(time.Time) error               { return nil }
func (m *memPacketConn) SetReadDeadline(time.Time) error           { return nil }
func (m *memPacketConn) SetWriteDeadline(time.Time) error          { return nil }

// benchInterceptor is an interceptor on a fresh engine with n drop rules,
// rule i matching match(i): rules the benchmarked traffic never fires.
func benchInterceptor(b *testing.B, n int, match func(i int) faults.Match) *interceptor {
	b.Helper()
	eng := faults.NewEngine(faults.EngineOptions{Seed: 1})
	for i := range n {
		if _, err := eng.Add(faults.Rule{ID: fmt.Sprintf("r%d", i), Match: match(i), Action: faults.Action{Type: "drop"}}); err != nil {
			b.Fatal(err)
		}
	}
	return &interceptor{engine: eng, clock: faults.SystemClock{}, log: slog.New(slog.DiscardHandler)}
}

// otherSources is a Binding rule for a source the benchmarks never use.
func otherSources(i int) faults.Match {
	return faults.Match{Methods: []string{"binding"}, Sources: []string{fmt.Sprintf("10.0.%d.1/32", i)}}
}

// BenchmarkPacketConnPassThrough measures what the interception adds to a
// datagram that no rule matches, in and out: the target is 0 allocations.
func BenchmarkPacketConnPassThrough(b *testing.B) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	for _, n := range []int{0, 100} {
		ic := benchInterceptor(b, n, otherSources)
		eng := ic.engine
		mem := &memPacketConn{data: req, from: from}
		var loops sync.WaitGroup
		pc := newPacketConn(mem, ic, &loops)
		pc.steer = newSteering() // as with several read loops (steer.go)
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
		})
		// The same with the trace on, as the default config has it: every
		// message recorded, bytes kept for captures.
		tic := &interceptor{engine: eng, clock: faults.SystemClock{}, log: slog.New(slog.DiscardHandler),
			trace: trace.New(trace.Options{Size: trace.DefaultSize, CaptureBytes: trace.DefaultCaptureBytes})}
		tpc := newPacketConn(mem, tic, &loops)
		b.Run(fmt.Sprintf("wrapped+trace/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k, addr, _ := tpc.ReadFrom(buf)
				_, _ = tpc.WriteTo(buf[:k], addr)
			}
		})
	}
}

// BenchmarkUDPBatchPassThrough is one Binding-sized round trip through the
// batched socket I/O on loopback (recvmmsg into pion's buffer, the answer by
// sendmmsg), as a ping-pong client sees it: the target is 0 allocations
// (the client's own calls allocate nothing either).
func BenchmarkUDPBatchPassThrough(b *testing.B) {
	for _, network := range []string{"udp4", "udp6"} {
		b.Run(network, func(b *testing.B) {
			lo := net.IPv4(127, 0, 0, 1)
			if network == "udp6" {
				lo = net.IPv6loopback
			}
			sock, err := net.ListenUDP(network, &net.UDPAddr{IP: lo})
			if err != nil {
				b.Skipf("no %s loopback: %v", network, err)
			}
			g := newUDPGuard(sock, Listener{Transport: "udp"}, slog.New(slog.DiscardHandler))
			ic := &interceptor{engine: faults.NewEngine(faults.EngineOptions{Seed: 1}), clock: faults.SystemClock{},
				log: slog.New(slog.DiscardHandler), delays: newDelayQueue(faults.SystemClock{})}
			var loops sync.WaitGroup
			pc := newPacketConn(g, ic, &loops)
			defer pc.Close()
			if pc.batch == nil {
				b.Skip("no batched UDP I/O on this platform")
			}
			cli, err := net.ListenUDP(network, &net.UDPAddr{IP: lo})
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			to := sock.LocalAddr().(*net.UDPAddr).AddrPort()
			req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
			buf, cbuf := make([]byte, inboundMTU), make([]byte, 1500)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cli.WriteToUDPAddrPort(req, to); err != nil {
					b.Fatal(err)
				}
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pc.WriteTo(buf[:n], addr); err != nil {
					b.Fatal(err)
				}
				if _, _, err := cli.ReadFromUDPAddrPort(cbuf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
