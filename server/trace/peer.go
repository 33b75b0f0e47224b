package trace

import "net/netip"

// PeerLeg counts the datagrams between one relay address and its peers
// (the peer leg of one allocation) since the relay was made. They are not
// recorded one by one: GET /trace answers these counts as of its Time, so
// a reader works out the rate per second from two answers.
type PeerLeg struct {
	// Relay is the relayed address, as pion reports it to the client.
	Relay netip.AddrPort `json:"relay"`
	// In counts what peers sent to the relay, Out what the relay sent to
	// peers.
	In  PeerCounts `json:"in"`
	Out PeerCounts `json:"out"`
}

// PeerCounts counts the peer-leg datagrams of one direction.
type PeerCounts struct {
	// Datagrams and Bytes count every datagram, whatever was decided.
	Datagrams uint64 `json:"datagrams"`
	Bytes     uint64 `json:"bytes"`
	// Decisions counts the datagrams by the action taken: "pass" when no
	// peer-leg rule fired, else the rule's action ("drop", "delay", ...).
	// The rules themselves are in the journal.
	Decisions map[string]uint64 `json:"decisions,omitempty"`
}
