package faults

import (
	"net/netip"
	"time"
)

// ActionKind is what the server does with a message, as decided by the
// engine: one per action type (Pass, Error, Drop, Delay, Duplicate,
// Truncate, Corrupt, MappedAddress, Close), each declared in the file of its
// action. A ratelimit rule never yields its own kind: the engine resolves it
// to Pass or to the kind of its Then action.
type ActionKind uint8

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
	// Retired is closed once the rule that fired is no longer active:
	// removed, replaced by a rule with its ID, or gone with a rule set that
	// Replace, Clear or a scenario swapped out. Disabling a rule does not
	// retire it. A server hands on at once what it still holds for the rule
	// (pending delays). Nil when no rule fired.
	Retired <-chan struct{}
}

// Fired reports whether a rule fired (including a rule whose action is pass).
func (v Verdict) Fired() bool { return v.Rule != "" }
