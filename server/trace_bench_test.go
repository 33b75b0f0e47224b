package server_test

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server"
)

// BenchmarkTracePassThrough compares Binding round trips over loopback
// through two stunfault servers with 100 rules that do not match, one with
// the trace off and one with it on (the default: every message recorded in
// both directions, its bytes kept for captures). Each iteration does one
// round trip to each, alternating, so a loaded machine slows both alike; it
// reports the median of each and the overhead of the trace in percent
// (the gate: at most 5).
func BenchmarkTracePassThrough(b *testing.B) {
	start := func(on bool) *server.Server {
		cfg := testConfig()
		cfg.Rules = nonMatchingRules(100, "method")
		if !on {
			cfg.Server.TraceSize = 0
		}
		srv := startServer(b, &cfg)
		if got := srv.Trace() != nil; got != on {
			b.Fatalf("trace on: got %v, want %v", got, on)
		}
		return srv
	}
	off, on := bindingRoundTrip(b, start(false)), bindingRoundTrip(b, start(true))
	var offNS, onNS []float64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			offNS, onNS = append(offNS, off()), append(onNS, on())
		} else {
			onNS, offNS = append(onNS, on()), append(offNS, off())
		}
	}
	b.StopTimer()
	mOff, mOn := median(offNS), median(onNS)
	b.ReportMetric(mOff, "off-ns/binding")
	b.ReportMetric(mOn, "on-ns/binding")
	b.ReportMetric(100*(mOn-mOff)/mOff, "overhead-%")
}

// bindingRoundTrip returns a function that does one Binding round trip to
// srv and returns how long it took, in nanoseconds.
func bindingRoundTrip(b *testing.B, srv *server.Server) func() float64 {
	b.Helper()
	conn, err := net.Dial("udp4", srv.STUNAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	buf := make([]byte, 1500)
	return func() float64 {
		t0 := time.Now()
		if _, err := conn.Write(req.Raw); err != nil {
			b.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(buf); err != nil {
			b.Fatalf("no answer: %v", err)
		}
		return float64(time.Since(t0))
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
