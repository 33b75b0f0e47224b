// Package trace is the record of every message the server saw: a bounded
// ring of fixed-size [Message] values (time, addresses, transport,
// direction, header fields, username and the decision taken), with the
// messages' bytes in a second, separately bounded byte ring so a capture can
// write the real packets.
//
// Recording is on the packet path: it copies header fields into a slot
// preallocated at [New] and the bytes into the byte ring, and allocates
// nothing. Readers copy out in bounded batches ([Ring.Since]) and wait for
// new messages on [Ring.Changed].
//
// The package imports faults (for the packet view and the verdict); it must
// not import package server, which feeds it.
package trace
