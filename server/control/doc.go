// Package control is stunfault's control protocol: the message types, the
// handler that serves them over a WebSocket (GET /control) and plain HTTP
// (POST /api/{op}), and the Go client the CLI and tests use. Wire and engine
// share one set of types: a rule on the wire is a [faults.Rule].
//
// A request is one JSON object with an "id" the reply echoes and an "op":
//
//	-> {"id":1,"op":"rules.add","rule":{"id":"r1","match":{"methods":["binding"]},"action":{"type":"error","code":403}}}
//	<- {"id":1,"ok":true,"revision":7,"result":{"rule":{...}}}
//
// A mutating reply carries the engine revision after the change, and is sent
// only once the packet path reads that revision: a test that awaits it can
// send its next packet at once. docs/control.md describes every op.
//
// The handler depends on a small [Backend] interface that package server
// implements; it imports faults, never server or main.
package control
