package server_test

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// rawExchange sends req on a fresh client socket of transport and returns the
// first response, or nil when none comes within wait.
func rawExchange(t *testing.T, addr, transport string, req []byte, wait time.Duration) *stun.Message {
	t.Helper()
	conn, err := net.Dial(transport, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	return m
}

func TestRuleAnswersBindingWith403(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	if _, err := srv.Faults().Add(faults.Rule{
		ID:     "screenpop-403",
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			res := rawExchange(t, turnAddr(t, srv, transport), transport, req.Raw, 5*time.Second)
			if res == nil {
				t.Fatal("no response")
			}
			if got := errorCode(t, res); got != 403 || res.TransactionID != req.TransactionID {
				t.Fatalf("got %s code %d, want a 403 Binding error for the same transaction", res.Type, got)
			}
			if err := stun.Fingerprint.Check(res); err != nil {
				t.Errorf("FINGERPRINT: %v", err)
			}
		})
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "screenpop-403", Method: "binding"}); n != 2 {
		t.Errorf("journal has %d firings of screenpop-403, want 2", n)
	}
}
