package faults

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPeerLeg(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "peer-in", Match: Match{Leg: LegPeer, Peers: []string{"10.9.0.0/16"}, RelayPorts: []int{50000}}, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "peer-out", Match: Match{Leg: LegPeer, Direction: "out"}, Action: Action{Type: "duplicate"}})
	mustAdd(t, e, Rule{ID: "client", Action: Action{Type: "drop"}, Match: Match{Methods: []string{"allocate"}}})
	dg := func(dir Direction, peer, relay string) *Packet {
		// STUN-looking payload: the peer leg never reads it as STUN.
		return &Packet{Data: pk.alloc.Data, Dir: dir, Transport: UDP, Leg: PeerLeg,
			Client: netip.MustParseAddrPort(peer), Relay: netip.MustParseAddrPort(relay)}
	}
	for _, tt := range []struct {
		p    *Packet
		want string
	}{
		{dg(In, "10.9.1.1:4000", "127.0.0.1:50000"), "peer-in"},
		{dg(In, "10.8.1.1:4000", "127.0.0.1:50000"), ""},
		{dg(In, "10.9.1.1:4000", "127.0.0.1:50001"), ""},
		{dg(Out, "10.9.1.1:4000", "127.0.0.1:50000"), "peer-out"},
		{fresh(pk.alloc), "client"},
	} {
		if v := e.Decide(tt.p); v.Rule != tt.want {
			t.Errorf("%v %s -> %s: fired %q, want %q", tt.p.Dir, tt.p.Client, tt.p.Relay, v.Rule, tt.want)
		}
	}
	es := e.Journal().Query(Query{Rule: "peer-in"})
	if len(es) != 1 || es[0].Leg != "peer" || es[0].Relay.Port() != 50000 || es[0].Client.String() != "10.9.1.1:4000" {
		t.Errorf("journal = %+v, want the peer-leg firing with leg, relay and peer", es)
	}
	for _, tt := range []struct {
		r   Rule
		msg string
	}{
		{Rule{Match: Match{Leg: "relay"}, Action: Action{Type: "drop"}}, `match.leg: unknown leg "relay"`},
		{Rule{Match: Match{Leg: LegPeer, Methods: []string{"binding"}}, Action: Action{Type: "drop"}}, "match.methods: not on the peer leg"},
		{Rule{Match: Match{Leg: LegPeer}, Action: Action{Type: "error", Code: 403}}, `action.type: "error" does not apply on the peer leg`},
		{Rule{Match: Match{Leg: LegPeer, RelayPorts: []int{0}}, Action: Action{Type: "drop"}}, "match.relay_ports[0]: must be a port"},
		{Rule{Match: Match{Leg: LegPeer, Peers: []string{"nope"}}, Action: Action{Type: "drop"}}, `match.peers[0]: "nope" is not`},
		{Rule{Match: Match{Peers: []string{"10.0.0.0/8"}}, Action: Action{Type: "drop"}}, "match.peers: only on the peer leg"},
	} {
		if err := tt.r.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Validate() = %v, want %q", err, tt.msg)
		}
	}
}
