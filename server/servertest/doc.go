// Package servertest starts a stunfault inside a Go test, as
// net/http/httptest starts an HTTP server: on free loopback ports, failing
// the test (never panicking) when it cannot start, and closed by the test's
// cleanup.
//
// One server per test, so tests run in parallel without sharing anything:
//
//	func TestClientRetriesOn486(t *testing.T) {
//		t.Parallel()
//		srv := servertest.New(t) // the default config on 127.0.0.1, UDP and TCP on one free port
//		srv.AddRule(t, faults.Rule{ // removed again when t ends
//			ID:     "quota",
//			Times:  2,
//			Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: ptr(true)},
//			Action: faults.Action{Type: "error", Code: 486, Integrity: "auto"},
//		})
//		conn, err := mypkg.Connect(ctx, srv.ICEServers()) // the code under test
//		...
//		if n := srv.Faults().Journal().Count(faults.Query{Rule: "quota"}); n != 2 {
//			t.Errorf("quota fired %d times, want 2", n)
//		}
//	}
//
// Or one server shared by the subtests of a test, each scoping its rules so
// they only see its own client: by Match.Sources (the client socket's
// address; loopback clients can bind any of 127.0.0.0/8), by Match.Username
// (for signed TURN requests), and finding its firings with labels:
//
//	cfg := config.Default()
//	cfg.Users = []config.User{{Name: "alice", Password: "alice-pass"}, {Name: "bob", Password: "bob-pass"}}
//	srv := servertest.New(t, servertest.WithConfig(cfg))
//	t.Run("alice", func(t *testing.T) {
//		t.Parallel()
//		srv.AddRule(t, faults.Rule{
//			Labels: map[string]string{"test": t.Name()},
//			Match:  faults.Match{Methods: []string{"refresh"}, Username: "^alice$"},
//			Action: faults.Action{Type: "drop"},
//		})
//		...
//		srv.Faults().Journal().Count(faults.Query{Labels: map[string]string{"test": t.Name()}})
//	})
//
// The server's listeners and HTTP side are always on port 0 of their
// configured hosts, 127.0.0.1 in the default config (a config's ports are
// rewritten, see [WithConfig]); read the addresses back with STUNAddr,
// TURNAddr, ICEServers and ControlURL. [WithLogs] sends
// the server's logs to the test's log, and stops before the test ends.
//
// For a test that drives stunfault over its control socket, as a program in
// another language would, dial [Server.ControlURL] with
// server/control.Dial. examples/fixture is a complete client test written
// with this package.
package servertest
