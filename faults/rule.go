package faults

import (
	"maps"
	"slices"
)

// Rule says which STUN/TURN messages it matches and what happens to them.
// The same struct is read from TOML ([[rules]] in the config) and carried as
// JSON over the control socket. A Rule is plain data: Validate checks it, and
// the engine compiles it once when it is added.
type Rule struct {
	// ID is unique among the active rules. Adding a rule with a known ID
	// replaces that rule (and resets its counters). Generated when empty.
	ID string `toml:"id" json:"id,omitempty"`
	// Description is free text shown in listings and events.
	Description string `toml:"description" json:"description,omitempty"`
	// Labels are free-form key/value pairs; queries, events and removal can
	// filter on them (for example one label per test).
	Labels map[string]string `toml:"labels" json:"labels,omitempty"`
	// Priority orders rules: lower runs first, ties keep insertion order, and
	// the first rule that fires decides.
	Priority int `toml:"priority" json:"priority,omitempty"`
	// Enabled switches the rule off when false. Nil means true.
	Enabled *bool `toml:"enabled" json:"enabled,omitempty"`
	// Probability is the chance (0..1) that an eligible message fires the
	// rule, rolled on the server's seeded RNG. Nil means 1.
	Probability *float64 `toml:"probability" json:"probability,omitempty"`
	// Times caps how often the rule fires (0 = unlimited).
	Times int `toml:"times" json:"times,omitempty"`
	// After lets the first After matching messages through.
	After int `toml:"after" json:"after,omitempty"`
	// Every fires on every Nth eligible match (0 or 1 = every one).
	Every int `toml:"every" json:"every,omitempty"`
	// For expires the rule this long after it was added (0 = never).
	For Duration `toml:"for" json:"for,omitempty"`
	// Machine names a state machine (WireMock's scenarios). With
	// RequiresState the rule fires only in that state; SetsState moves the
	// machine on when it fires. Machines start in the state "started".
	Machine       string `toml:"machine" json:"machine,omitempty"`
	RequiresState string `toml:"requires_state" json:"requires_state,omitempty"`
	SetsState     string `toml:"sets_state" json:"sets_state,omitempty"`
	// MachineKey, with Machine, gives each client ("client": transport and
	// address:port) or each USERNAME ("username") its own state in the
	// machine, so "the first Allocate of each client gets 401" holds for
	// every client. "" is one state for all. The machine remembers at most
	// MaxMachineKeys keys, forgetting the least recently used (that key
	// starts over). It is part of the machine's identity: rules naming one
	// machine with different keys name different machines.
	MachineKey string `toml:"machine_key" json:"machine_key,omitempty"`

	// Match selects the messages; every field given must hold.
	Match Match `toml:"match" json:"match"`
	// Action is what happens to a message the rule fires on.
	Action Action `toml:"action" json:"action"`
}

// IsEnabled reports whether the rule is on (Enabled nil or true).
func (r *Rule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// chance returns the rule's probability (1 when unset).
func (r *Rule) chance() float64 {
	if r.Probability == nil {
		return 1
	}
	return *r.Probability
}

// Match selects messages. Every field given must hold; a list means any of its
// values. The zero Match matches every inbound STUN message.
type Match struct {
	// Methods: binding, allocate, refresh, createpermission, channelbind,
	// send, data, channeldata. Empty means every STUN method, but not
	// channeldata, which is not STUN.
	Methods []string `toml:"methods" json:"methods,omitempty"`
	// Classes: request, indication, success, error.
	Classes []string `toml:"classes" json:"classes,omitempty"`
	// Direction is "in" (client to server, the default) or "out".
	Direction string `toml:"direction" json:"direction,omitempty"`
	// Transports: udp, tcp.
	Transports []string `toml:"transports" json:"transports,omitempty"`
	// Sources are client address prefixes in CIDR notation.
	Sources []string `toml:"sources" json:"sources,omitempty"`
	// Username is a regular expression on the USERNAME attribute. Binding
	// requests and first Allocates carry none: scope those by Sources.
	Username string `toml:"username" json:"username,omitempty"`
	// MinSize and MaxSize bound the whole message in bytes (0 = no bound).
	MinSize int `toml:"min_size" json:"min_size,omitempty"`
	MaxSize int `toml:"max_size" json:"max_size,omitempty"`
	// Transmission picks one copy of a transaction from one client:
	// 1 = the first send, 2 = the first retransmit (0 = any).
	Transmission int `toml:"transmission" json:"transmission,omitempty"`
	// Authenticated, when set, requires the message to carry (true) or lack
	// (false) MESSAGE-INTEGRITY.
	Authenticated *bool `toml:"authenticated" json:"authenticated,omitempty"`
	// Attributes are conditions on single attributes; all must hold.
	Attributes []AttributeMatch `toml:"attributes" json:"attributes,omitempty"`
	// Webhook makes the rule depend on the simulated webhook's state.
	Webhook *WebhookMatch `toml:"webhook" json:"webhook,omitempty"`
	// MinUserAllocations holds when the message's USERNAME already has at
	// least this many live TURN allocations (a message without USERNAME:
	// never), MinAllocations when the server has at least this many in all
	// (0 = no condition). With an error action they make quotas: 486 at N
	// per user, 508 at N in all. They read EngineOptions.Allocations.
	MinUserAllocations int `toml:"min_user_allocations" json:"min_user_allocations,omitempty"`
	MinAllocations     int `toml:"min_allocations" json:"min_allocations,omitempty"`
	// Leg is "client" (the default: messages between clients and the
	// server) or "peer": datagrams between a relayed address and a peer,
	// Direction "in" from the peer to the relay, "out" from the relay to
	// the peer. A peer-leg rule matches on Peers, RelayPorts, MinSize and
	// MaxSize only, and drops, delays, duplicates, truncates or corrupts.
	Leg string `toml:"leg" json:"leg,omitempty"`
	// Peers are peer address prefixes in CIDR notation (peer leg only).
	Peers []string `toml:"peers" json:"peers,omitempty"`
	// RelayPorts are relayed-address ports (peer leg only).
	RelayPorts []int `toml:"relay_ports" json:"relay_ports,omitempty"`
}

// AttributeMatch is a condition on one STUN attribute.
type AttributeMatch struct {
	// Type is the attribute by name (USERNAME, SOFTWARE, ...) or number
	// (decimal or 0x hex).
	Type string `toml:"type" json:"type"`
	// Present, when set, requires the attribute to be there (true) or absent
	// (false). Any other condition implies presence.
	Present *bool `toml:"present" json:"present,omitempty"`
	// Contains is a substring of the attribute's raw value.
	Contains string `toml:"contains" json:"contains,omitempty"`
	// Regex is a regular expression on the raw value.
	Regex string `toml:"regex" json:"regex,omitempty"`
	// MinLen and MaxLen bound the value's length in bytes (0 = no bound).
	MinLen int `toml:"min_len" json:"min_len,omitempty"`
	MaxLen int `toml:"max_len" json:"max_len,omitempty"`
}

// WebhookMatch makes a rule depend on the simulated webhook endpoint.
type WebhookMatch struct {
	// Name is the webhook ([webhooks.NAME]); empty means any.
	Name string `toml:"name" json:"name,omitempty"`
	// MinInflight requires at least this many HTTP requests held open now.
	MinInflight int `toml:"min_inflight" json:"min_inflight,omitempty"`
	// MinPending requires at least this many held requests plus async work.
	MinPending int `toml:"min_pending" json:"min_pending,omitempty"`
	// Body is a regular expression a held request's body must match.
	Body string `toml:"body" json:"body,omitempty"`
	// MinBodyBytes and MinHeaderBytes require a held request at least this big.
	MinBodyBytes   int `toml:"min_body_bytes" json:"min_body_bytes,omitempty"`
	MinHeaderBytes int `toml:"min_header_bytes" json:"min_header_bytes,omitempty"`
	// Window lets a matching request that ended this long ago still count.
	Window Duration `toml:"window" json:"window,omitempty"`
}

// Action is what happens to a message a rule fires on. Type selects the kind;
// the other fields are that kind's parameters.
type Action struct {
	// Type: error, drop, delay, duplicate, truncate, corrupt,
	// mapped_address, close, ratelimit, pass.
	Type string `toml:"type" json:"type"`

	// Code (300-699) and Reason of an error response.
	Code   int    `toml:"code" json:"code,omitempty"`
	Reason string `toml:"reason" json:"reason,omitempty"`
	// Integrity of an error response: auto (sign when the request was
	// signed), none, or bad (a wrong MESSAGE-INTEGRITY).
	Integrity string `toml:"integrity" json:"integrity,omitempty"`
	// Alternate is the ALTERNATE-SERVER address (ip:port) of a 300.
	Alternate string `toml:"alternate" json:"alternate,omitempty"`

	// Delay and Jitter of a delay action.
	Delay  Duration `toml:"delay" json:"delay,omitempty"`
	Jitter Duration `toml:"jitter" json:"jitter,omitempty"`

	// Copies sent in addition to the original by duplicate.
	Copies int `toml:"copies" json:"copies,omitempty"`
	// Length in bytes that truncate keeps.
	Length int `toml:"length" json:"length,omitempty"`
	// Target of corrupt: header, attribute or fingerprint; Count bytes flipped.
	Target string `toml:"target" json:"target,omitempty"`
	Count  int    `toml:"count" json:"count,omitempty"`

	// Address (ip:port) put in the XOR-MAPPED-ADDRESS by mapped_address.
	Address string `toml:"address" json:"address,omitempty"`

	// Rate (per second) and Burst of a ratelimit; Then is the action for
	// what exceeds it.
	Rate  float64 `toml:"rate" json:"rate,omitempty"`
	Burst int     `toml:"burst" json:"burst,omitempty"`
	Then  *Action `toml:"then" json:"then,omitempty"`
}

// Clone returns a deep copy of r: it shares no slice, map or pointer with r.
func (r Rule) Clone() Rule {
	r.Labels = maps.Clone(r.Labels)
	r.Enabled = clonePtr(r.Enabled)
	r.Probability = clonePtr(r.Probability)
	m := &r.Match
	m.Methods = slices.Clone(m.Methods)
	m.Classes = slices.Clone(m.Classes)
	m.Transports = slices.Clone(m.Transports)
	m.Sources = slices.Clone(m.Sources)
	m.Authenticated = clonePtr(m.Authenticated)
	m.Attributes = slices.Clone(m.Attributes)
	for i := range m.Attributes {
		m.Attributes[i].Present = clonePtr(m.Attributes[i].Present)
	}
	m.Webhook = clonePtr(m.Webhook)
	r.Action = cloneAction(r.Action)
	return r
}
