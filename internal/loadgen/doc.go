// Package loadgen generates bounded load against STUN/TURN servers: Binding
// requests, whole Allocate cycles, and ChannelData round trips through a
// relay to an echo peer, over UDP, TCP or TLS, from N sockets each keeping
// a window of transactions outstanding. Every answer is validated (method,
// transaction id, the client's own XOR-MAPPED-ADDRESS, the echo's bytes),
// and the result counts answers, losses, error codes and latency
// percentiles. It also generates HTTP load ([RunHTTP]): POST requests from
// a number of workers, paced to a rate, as `stunfault webhook` sends to a
// simulated webhook, counting answers by status.
//
// Every load is bounded: by a count, a duration or both (never neither), by
// MaxSockets and MaxWindow, and to loopback targets unless AllowRemote is
// set; STUN addresses are IP literals, nothing is looked up. An HTTP load
// is bounded by MaxHTTPConcurrency, MaxHTTPRequests and MaxHTTPDuration;
// [CheckHTTPLoopback] checks its target, resolving a name. The `stunfault load`
// and `stunfault webhook` commands and the comparison in bench/ are built on it.
package loadgen
