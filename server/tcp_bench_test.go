package server

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server/internal/stunframe"
)

// memConn is a TCP stream that holds the same frame back to back, as many
// as a Read asks for, and discards writes: a connection with no kernel in
// it, to measure the wrapper.
type memConn struct {
	frame  []byte
	writes int
}

func (m *memConn) Read(p []byte) (int, error) {
	n := 0
	for len(p)-n >= len(m.frame) {
		n += copy(p[n:], m.frame)
	}
	return n, nil
}
func (m *memConn) Write(p []byte) (int, error)      { m.writes++; return len(p), nil }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkTCPConnPassThrough measures what the interception adds to a TCP
// frame that no rule matches, in and its answer out, with pion's framing
// of what Read hands it: one op is one frame. The target is 0 allocations;
// writes/frame shows the answers sent per write system call.
func BenchmarkTCPConnPassThrough(b *testing.B) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	resp := stun.MustBuild(stun.TransactionID, stun.BindingSuccess, stun.Fingerprint).Raw
	for _, n := range []int{0, 100} {
		ic := benchInterceptor(b, n, otherSources)
		mem := &memConn{frame: req}
		tc := newTCPConn(mem, ic)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			buf := make([]byte, 1600) // pion's read size
			var have []byte
			b.ReportAllocs()
			for b.Loop() {
				if len(have) == 0 {
					k, err := tc.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					have = buf[:k]
				}
				size, err := stunframe.Size(have)
				if err != nil {
					b.Fatal(err)
				}
				have = have[size:]
				if _, err := tc.Write(resp); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(mem.writes)/float64(b.N), "writes/frame")
		})
	}
}
