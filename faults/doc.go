// Package faults is stunfault's rule engine: rules as data, how they are
// validated, and (as the engine grows) how a rule decides what happens to a
// STUN or TURN message.
//
// A [Rule] is one struct that TOML (package config) and JSON (the control
// socket) both carry. The package knows nothing of sockets, HTTP or TOML files:
// it must not import net/http, the toml decoder or anything under server.
package faults
