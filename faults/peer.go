package faults

import (
	"net/netip"
	"slices"
	"strconv"
)

func validAddr(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

// The values of Match.Leg.
const (
	// LegClient is the leg between clients and the server (the default).
	LegClient = "client"
	// LegPeer is the leg between a relayed address and a peer.
	LegPeer = "peer"
)

// Leg is the leg a [Packet] travels.
type Leg uint8

// The legs.
const (
	// ClientLeg is a message between a client and the server.
	ClientLeg Leg = iota
	// PeerLeg is a datagram between a relayed address and a peer.
	PeerLeg
)

func (p *Packet) legName() string {
	if p.Leg == PeerLeg {
		return LegPeer
	}
	return ""
}

// peerActions are the actions a peer-leg rule may take.
var peerActions = []string{"drop", "delay", "duplicate", "truncate", "corrupt", "pass"}

// leg checks the leg of r and the fields each leg allows.
func (v *ruleValidator) leg(r *Rule) {
	m := &r.Match
	switch m.Leg {
	case "", LegClient:
		if len(m.Peers) > 0 {
			v.add("match.peers", "only on the peer leg (leg = \"peer\"); on the client leg use sources")
		}
		if len(m.RelayPorts) > 0 {
			v.add("match.relay_ports", "only on the peer leg (leg = \"peer\")")
		}
		return
	case LegPeer:
	default:
		v.add("match.leg", "unknown leg %q (want %q or %q)", m.Leg, LegClient, LegPeer)
		return
	}
	notOnPeer := func(field string, set bool) {
		if set {
			v.add("match."+field, "not on the peer leg: its datagrams are payload, not STUN (peer-leg rules match peers, relay_ports, min_size, max_size)")
		}
	}
	notOnPeer("methods", len(m.Methods) > 0)
	notOnPeer("classes", len(m.Classes) > 0)
	notOnPeer("transports", len(m.Transports) > 0)
	notOnPeer("sources", len(m.Sources) > 0)
	notOnPeer("username", m.Username != "")
	notOnPeer("transmission", m.Transmission != 0)
	notOnPeer("authenticated", m.Authenticated != nil)
	notOnPeer("attributes", len(m.Attributes) > 0)
	notOnPeer("webhook", m.Webhook != nil)
	notOnPeer("min_user_allocations", m.MinUserAllocations != 0)
	notOnPeer("min_allocations", m.MinAllocations != 0)
	if r.MachineKey == MachineKeyUsername {
		v.add("machine_key", "a peer datagram has no USERNAME: use \"client\" (the peer) or none")
	}
	if !slices.Contains(peerActions, r.Action.Type) {
		v.add("action.type", "%q does not apply on the peer leg (want one of drop, delay, duplicate, truncate, corrupt, pass)", r.Action.Type)
	}
	for i, s := range m.Peers {
		if _, perr := netip.ParsePrefix(s); perr != nil && !validAddr(s) {
			v.add("match.peers["+strconv.Itoa(i)+"]", "%q is not an address or CIDR prefix", s)
		}
	}
	for i, p := range m.RelayPorts {
		if p < 1 || p > 65535 {
			v.add("match.relay_ports["+strconv.Itoa(i)+"]", "must be a port from 1 to 65535, got %d", p)
		}
	}
}
