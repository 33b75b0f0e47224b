package faults

import (
	"testing"
)

// BenchmarkDecideByKind is 100 copies of one rule of the hard mix
// (benchMatches) on a message none of them fires on: what one header-passing
// rule of each kind costs (divide by 100), next to the kinds the header
// mask rules out.
func BenchmarkDecideByKind(b *testing.B) {
	pk := newTestPackets(b)
	names := []string{"other-method", "sources", "username", "min-size", "direction-out",
		"attribute", "transport-tcp", "webhook", "class-indication", "unauthenticated"}
	for i, m := range benchMatches() {
		b.Run(names[i], func(b *testing.B) {
			e := NewEngine(EngineOptions{Signals: &fakeSignals{}})
			for j := range 100 {
				mustAdd(b, e, dropRule(names[i]+string(rune('a'+j%26))+string(rune('a'+j/26)), m))
			}
			p := &Packet{}
			b.ReportAllocs()
			for b.Loop() {
				*p = Packet{Data: pk.bindSigned.Data, Client: clientA}
				if e.Decide(p).Fired() {
					b.Fatal("fired")
				}
			}
		})
	}
}
