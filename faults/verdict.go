package faults

import (
	"net/netip"
	"time"
)

// ActionKind is what the server does with a message, as decided by the
// engine. A ratelimit rule never yields its own kind: the engine resolves it
// to Pass or to the kind of its Then action.
type ActionKind uint8

// Action kinds. Pass is the zero value.
const (
	// Pass hands the message on unchanged.
	Pass ActionKind = iota
	// Error answers a request with a STUN error response instead of passing it.
	Error
	// Drop discards the message.
	Drop
	// Delay passes a copy of the message after Verdict.Delay.
	Delay
	// Duplicate passes the message and Action.Copies more copies.
	Duplicate
	// Truncate passes a copy cut to Action.Length bytes.
	Truncate
	// Corrupt passes a copy with Action.Count bytes flipped in Action.Target.
	Corrupt
	// MappedAddress rewrites the XOR-MAPPED-ADDRESS of a Binding success to
	// Verdict.Address.
	MappedAddress
	// Close closes the client's TCP connection.
	Close
)

var kindNames = [...]string{
	Pass:          "pass",
	Error:         "error",
	Drop:          "drop",
	Delay:         "delay",
	Duplicate:     "duplicate",
	Truncate:      "truncate",
	Corrupt:       "corrupt",
	MappedAddress: "mapped_address",
	Close:         "close",
}

// String returns the kind as rules spell it ("error", "mapped_address").
func (k ActionKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// actionKindOf maps an action type to its kind; ratelimit is not a kind.
func actionKindOf(typ string) (ActionKind, bool) {
	for k, name := range kindNames {
		if name == typ {
			return ActionKind(k), true
		}
	}
	return 0, false
}

// Verdict is the engine's decision on one message: a value the server acts
// on. The engine never does I/O. The zero Verdict passes the message and
// means that no rule fired.
type Verdict struct {
	// Kind is what to do.
	Kind ActionKind
	// Rule is the ID of the rule that fired ("" when none did).
	Rule string
	// Seq is the journal sequence number of the firing (0 when none).
	Seq uint64
	// Action holds the parameters of the action taken (Code, Reason,
	// Integrity, Copies, Length, Target, Count...): the rule's action, or
	// its Then action when a ratelimit was exceeded. It is shared with the
	// engine and must not be modified. Nil when no rule fired.
	Action *Action
	// Delay is how long a Delay verdict holds the message, with the rule's
	// jitter already rolled.
	Delay time.Duration
	// Address is the parsed Action.Address of MappedAddress, or the parsed
	// Action.Alternate of an Error (ALTERNATE-SERVER of a 300).
	Address netip.AddrPort
}

// Fired reports whether a rule fired (including a rule whose action is pass).
func (v Verdict) Fired() bool { return v.Rule != "" }
