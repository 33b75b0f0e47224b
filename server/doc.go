// Package server runs stunfault: a pion/turn STUN/TURN server on the
// listeners of a [config.Config], and the HTTP side (/healthz, /version).
//
// The lifecycle follows net/http/httptest: [New] validates and binds nothing,
// [Server.Start] binds every socket before it returns (so "address in use" is
// an error, not a log line), addresses are read back from the running server,
// and [Server.Close] releases every socket and goroutine:
//
//	srv, err := server.New(cfg, server.WithLogger(logger))
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Close()
//	fmt.Println(srv.STUNAddr())
//
// The server is pion's: stunfault never re-implements STUN or TURN processing.
// It imports config and faults, never main or examples, and not pion/webrtc.
package server
