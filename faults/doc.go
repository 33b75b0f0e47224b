// Package faults is stunfault's rule engine: rules as data, how they are
// validated and compiled, and how a compiled rule set decides what happens
// to one STUN, TURN or ChannelData message.
//
// A [Rule] is one struct that TOML (package config) and JSON (the control
// socket) both carry. An [Engine] holds the active rules in an immutable
// snapshot behind an atomic pointer: [Engine.Decide] reads it without
// locking and returns a [Verdict] value; changes swap in a new snapshot and
// bump the revision. Every firing goes to a bounded [Journal] and to
// subscribers ([Engine.Subscribe]). Time comes from a [Clock] and chance from
// one seeded RNG, so tests are reproducible.
//
// Each action type (error, drop, delay, ...) is one small type in its own
// file, action_NAME.go: its parameters, their documented ranges, its
// compilation and the directions and transports it applies to. The
// registry in action.go lists them once; nothing else names a kind.
//
// The package does no I/O. It knows nothing of sockets, HTTP or TOML files:
// it must not import net, net/http, the toml decoder or anything under
// server. The server acts on verdicts; the simulated webhook side is read
// through [Signals].
package faults
