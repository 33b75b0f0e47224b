package server_test

import (
	"errors"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// Quota and capacity as conditions, read from the live allocation table:
// 486 at one allocation per user, 508 at two in all, as pion clients see them.
func TestQuotaAndCapacityRules(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Users = append(cfg.Users, config.User{Name: "bob", Password: "bpw"}, config.User{Name: "carol", Password: "cpw"})
	signed := true
	alloc := func(m faults.Match) faults.Match {
		m.Methods, m.Classes, m.Authenticated = []string{"allocate"}, []string{"request"}, &signed
		return m
	}
	cfg.Rules = []faults.Rule{
		{ID: "quota", Match: alloc(faults.Match{MinUserAllocations: 1}), Action: faults.Action{Type: "error", Code: 486}},
		{ID: "capacity", Match: alloc(faults.Match{MinAllocations: 2}), Action: faults.Action{Type: "error", Code: 508}},
	}
	srv := startServer(t, &cfg)
	try := func(user, pass string, want int) {
		t.Helper()
		relay, err := newTURNClient(t, srv, "udp", user, pass).Allocate()
		if err == nil {
			t.Cleanup(func() { relay.Close() })
			if want != 0 {
				t.Fatalf("%s: Allocate succeeded, want %d", user, want)
			}
			return
		}
		var te *stun.TurnError
		if !errors.As(err, &te) || int(te.ErrorCodeAttr.Code) != want {
			t.Fatalf("%s: Allocate: %v, want code %d", user, err, want)
		}
	}
	try("user", "pass", 0)
	try("user", "pass", 486) // user has one already
	try("bob", "bpw", 0)     // bob has none, and one in all
	try("carol", "cpw", 508) // two in all
	j := srv.Faults().Journal()
	if q, c := j.Count(faults.Query{Rule: "quota"}), j.Count(faults.Query{Rule: "capacity"}); q != 1 || c != 1 {
		t.Errorf("journal: quota fired %d, capacity %d; want 1 each", q, c)
	}
}
