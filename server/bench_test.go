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

// nonMatchingRules returns n rules that do not match a Binding request
// from 127.0.0.1. With mix "method" they are about other methods, so the
// engine rules them out on the message header alone (the common case); with
// mix "source" they are about Binding requests from other clients, so each
// one costs a real evaluation (the expensive case).
func nonMatchingRules(n int, mix string) []faults.Rule {
	methods := []string{"allocate", "refresh", "createpermission", "channelbind"}
	rules := make([]faults.Rule, n)
	for i := range rules {
		m := faults.Match{Methods: []string{methods[i%len(methods)]}}
		if mix == "source" {
			m = faults.Match{
				Methods: []string{"binding"},
				Classes: []string{"request"},
				Sources: []string{fmt.Sprintf("10.%d.%d.1/32", i/250, i%250)},
			}
		}
		rules[i] = faults.Rule{ID: fmt.Sprintf("other-%d", i), Match: m, Action: faults.Action{Type: "error", Code: 403}}
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

// startPion starts a bare pion/turn v5 server on loopback UDP: the baseline.
func startPion(b *testing.B) string {
	b.Helper()
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
	b.Cleanup(func() { _ = ts.Close() })
	return pc.LocalAddr().String()
}

// BenchmarkBindingPassThrough compares Binding round trips over loopback
// through bare pion/turn v5 and through stunfault with 100 rules that do not
// match. Compare with: go test -run '^$' -bench BindingPassThrough -count 10
// ./server | benchstat -col /server -. The client shares the machine, so
// this is a figure, not a gate.
func BenchmarkBindingPassThrough(b *testing.B) {
	for _, mix := range []string{"method", "source"} {
		b.Run("mix="+mix+"/server=pion", func(b *testing.B) {
			benchBindings(b, startPion(b), stun.ClassSuccessResponse)
		})
		b.Run("mix="+mix+"/server=stunfault", func(b *testing.B) {
			cfg := testConfig()
			cfg.Rules = nonMatchingRules(100, mix)
			srv := startServer(b, &cfg)
			benchBindings(b, srv.STUNAddr().String(), stun.ClassSuccessResponse)
		})
	}
}

// BenchmarkInjectedError compares pion answering Bindings with stunfault
// answering every Binding with an injected 403 (built, signed when asked,
// journaled and sent by stunfault instead of pion).
func BenchmarkInjectedError(b *testing.B) {
	b.Run("server=pion", func(b *testing.B) {
		benchBindings(b, startPion(b), stun.ClassSuccessResponse)
	})
	b.Run("server=stunfault", func(b *testing.B) {
		cfg := testConfig()
		cfg.Rules = []faults.Rule{{
			ID:     "all-403",
			Match:  faults.Match{Methods: []string{"binding"}},
			Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
		}}
		srv := startServer(b, &cfg)
		benchBindings(b, srv.STUNAddr().String(), stun.ClassErrorResponse)
	})
}
