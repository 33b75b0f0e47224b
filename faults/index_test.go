package faults

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pion/stun/v4"
)

// TestIndexAgreesWithAWalk checks that the rule index picks the rule a walk
// of every rule in evaluation order would: for random rule sets that differ
// in header conditions, priorities and enabled, and messages of every header
// combination, Decide fires the first enabled rule (by priority, then
// insertion) whose header conditions hold, judged here from the rule's
// fields and the message's accessors, not from the index's bits.
func TestIndexAgreesWithAWalk(t *testing.T) {
	pk := newTestPackets(t)
	base := []*Packet{
		pk.bind, pk.bindSigned, pk.alloc, pk.allocSigned, pk.bindSuccessOut, pk.send, pk.cdata,
		{Data: buildSTUN(t, stun.BindingError)},
		{Data: buildSTUN(t, stun.NewType(stun.Method(0x00a), stun.ClassRequest))},
		{Data: buildSTUN(t, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse))},
		{Data: buildSTUN(t, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), stun.NewShortTermIntegrity("pw"))},
		{Data: []byte("not stun at all, not channel data")},
	}
	var msgs []*Packet
	for _, b := range base {
		for _, dir := range []Direction{In, Out} {
			for _, tr := range []Transport{UDP, TCP} {
				msgs = append(msgs, &Packet{Data: b.Data, Dir: dir, Transport: tr, Client: clientA})
			}
		}
	}
	methods := []string{"binding", "allocate", "refresh", "send", "data", "createpermission", "channelbind", "channeldata"}
	classes := []string{"request", "indication", "success", "error"}
	pick := func(rng *rand.Rand, from []string) []string {
		var out []string
		for _, s := range from {
			if rng.IntN(4) == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(14, 1))
	for set := range 200 {
		var rules []Rule
		for i := range 1 + rng.IntN(12) {
			var m Match
			m.Methods = pick(rng, methods)
			m.Classes = pick(rng, classes)
			if rng.IntN(2) == 0 {
				m.Direction = "out"
			}
			if tr := rng.IntN(3); tr > 0 {
				m.Transports = []string{[]string{"udp", "tcp"}[tr-1]}
			}
			if a := rng.IntN(3); a > 0 {
				signed := a == 1
				m.Authenticated = &signed
			}
			enabled := rng.IntN(5) > 0
			r := Rule{ID: fmt.Sprint(i), Priority: rng.IntN(3), Enabled: &enabled, Match: m, Action: Action{Type: "drop"}}
			rules = append(rules, r)
		}
		e := NewEngine(EngineOptions{})
		for _, r := range rules {
			if _, err := e.Add(r); err != nil {
				t.Fatalf("set %d: Add(%+v): %v", set, r, err)
			}
		}
		order := slices.Clone(rules)
		slices.SortStableFunc(order, func(a, b Rule) int { return cmp.Compare(a.Priority, b.Priority) })
		for _, p := range msgs {
			want := ""
			for _, r := range order {
				if *r.Enabled && headerHolds(&r.Match, fresh(p)) {
					want = r.ID
					break
				}
			}
			if got := e.Decide(fresh(p)).Rule; got != want {
				t.Fatalf("set %d, %s %s %s %s/%s: rule %q fired, want %q; rules %+v",
					set, p.Dir, p.Transport, p.methodName(), p.className(), fmt.Sprint(fresh(p).HasIntegrity()), got, want, rules)
			}
		}
	}
}

// headerHolds reports whether m's header conditions hold for p, from the
// documented meaning of each field.
func headerHolds(m *Match, p *Packet) bool {
	var method, class string
	switch {
	case p.IsSTUN():
		method, class = p.Method().String(), p.Class().String()
	case p.IsChannelData():
		method = "channeldata"
	default:
		return false
	}
	if len(m.Methods) > 0 && !slices.Contains(m.Methods, method) {
		return false
	}
	if class != "" && len(m.Classes) > 0 && !slices.Contains(m.Classes, class) {
		return false
	}
	if len(m.Methods) == 0 && method == "channeldata" {
		return false // no method condition means every STUN method
	}
	if (m.Direction == "out") != (p.Dir == Out) {
		return false
	}
	if len(m.Transports) > 0 && !slices.Contains(m.Transports, p.Transport.String()) {
		return false
	}
	if m.Authenticated != nil && *m.Authenticated != p.HasIntegrity() {
		return false
	}
	return true
}
