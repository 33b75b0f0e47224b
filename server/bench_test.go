package server_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/faults"
)

// nonMatchingRules returns n rules that look at every Binding request (same
// method and class) and then fail on their source, so each one costs a real
// evaluation: the expensive kind of "does not match".
func nonMatchingRules(n int) []faults.Rule {
	rules := make([]faults.Rule, n)
	for i := range rules {
		rules[i] = faults.Rule{
			ID: fmt.Sprintf("other-client-%d", i),
			Match: faults.Match{
				Methods: []string{"binding"},
				Classes: []string{"request"},
				Sources: []string{fmt.Sprintf("10.%d.%d.1/32", i/250, i%250)},
			},
			Action: faults.Action{Type: "error", Code: 403},
		}
	}
	return rules
}

// benchBindings sends b.N Binding requests to addr from one UDP socket, one
// at a time, and checks each answer's class.
func benchBindings(b *testing.B, addr string, wantClass stun.MessageClass) {
	b.Helper()
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	buf := make([]byte, 1500)
	res := &stun.Message{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := conn.Write(req.Raw); err != nil {
			b.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			b.Fatalf("no answer: %v", err)
		}
		res.Raw = buf[:n]
		if err := res.Decode(); err != nil || res.Type.Class != wantClass {
			b.Fatalf("answer %v (%v), want class %v", res.Type, err, wantClass)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bindings/s")
}

// BenchmarkBinding compares Binding round trips over loopback: bare
// pion/turn v5, stunfault passing them through 100 rules that do not match,
// and stunfault answering every one with an injected 403. Run with
// -count 10 and compare with benchstat; the client shares the machine.
func BenchmarkBinding(b *testing.B) {
	b.Run("server=pion", func(b *testing.B) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ts, err := turn.NewServer(turn.ServerConfig{
			Realm:             "stunfault.test",
			PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc}},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer ts.Close()
		benchBindings(b, pc.LocalAddr().String(), stun.ClassSuccessResponse)
	})
	b.Run("server=stunfault/rules=100", func(b *testing.B) {
		cfg := testConfig()
		cfg.Rules = nonMatchingRules(100)
		srv := startServer(b, &cfg)
		benchBindings(b, srv.STUNAddr().String(), stun.ClassSuccessResponse)
	})
	b.Run("server=stunfault/injected=403", func(b *testing.B) {
		cfg := testConfig()
		cfg.Rules = []faults.Rule{{
			ID:     "all-403",
			Match:  faults.Match{Methods: []string{"binding"}},
			Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
		}}
		// The journal keeps its default size; recording is part of the cost.
		srv := startServer(b, &cfg)
		benchBindings(b, srv.STUNAddr().String(), stun.ClassErrorResponse)
	})
}
