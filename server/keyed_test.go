package server_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// Two pion TURN clients racing: with machine_key = "client" each one's first
// Allocate gets 401 and its second 486, whatever the other does; the third
// succeeds.
func TestKeyedMachineTwoClientsRacing(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	alloc := faults.Match{Methods: []string{"allocate"}, Classes: []string{"request"}}
	cfg.Rules = []faults.Rule{
		{ID: "first-401", Machine: "alloc", MachineKey: "client", RequiresState: "started", SetsState: "challenged",
			Match: alloc, Action: faults.Action{Type: "error", Code: 401}},
		{ID: "second-486", Machine: "alloc", MachineKey: "client", RequiresState: "challenged", SetsState: "done",
			Match: alloc, Action: faults.Action{Type: "error", Code: 486}},
	}
	srv := startServer(t, &cfg)
	clients := []string{"udp", "udp", "tcp"}
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, transport := range clients {
		c := newTURNClient(t, srv, transport, "user", "pass")
		wg.Go(func() {
			relay, err := c.Allocate()
			if err == nil {
				relay.Close()
				errs[i] = errors.New("first Allocate succeeded")
				return
			}
			var te *stun.TurnError
			if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeAllocQuotaReached {
				errs[i] = err
				return
			}
			relay, err = c.Allocate()
			if err != nil {
				errs[i] = err
				return
			}
			relay.Close()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d (%s): %v; want 486 after the 401 retry, then success", i, clients[i], err)
		}
	}
	j := srv.Faults().Journal()
	if n401, n486 := j.Count(faults.Query{Rule: "first-401"}), j.Count(faults.Query{Rule: "second-486"}); n401 != 3 || n486 != 3 {
		t.Errorf("journal: first-401 fired %d times, second-486 %d; want 3 each (one per client)", n401, n486)
	}
}

// With machine_key = "username" the state is each user's, whichever of its
// clients sends: pion clients of one user share it (the first user's
// first Allocate gets 486, its second client's succeeds), another user's
// starts over (bob's first Allocate gets 486 too).
func TestKeyedMachineByUsername(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Users = append(cfg.Users, config.User{Name: "bob", Password: "bpw"})
	cfg.Rules = []faults.Rule{{ID: "first-486", Machine: "alloc", MachineKey: "username", RequiresState: "started", SetsState: "done",
		Match: faults.Match{Methods: []string{"allocate"}, Classes: []string{"request"}}, Action: faults.Action{Type: "error", Code: 486}}}
	srv := startServer(t, &cfg)
	for _, tt := range []struct {
		name, user, pass, transport string
		want                        int
	}{
		{"user's first client", "user", "pass", "udp", 486},
		{"user's second client", "user", "pass", "tcp", 0},
		{"bob's client", "bob", "bpw", "udp", 486},
	} {
		relay, err := newTURNClient(t, srv, tt.transport, tt.user, tt.pass).Allocate()
		var te *stun.TurnError
		switch {
		case err == nil && tt.want == 0:
			relay.Close()
		case err == nil:
			relay.Close()
			t.Errorf("%s: Allocate succeeded, want %d", tt.name, tt.want)
		case !errors.As(err, &te) || int(te.ErrorCodeAttr.Code) != tt.want:
			t.Errorf("%s: Allocate: %v, want code %d", tt.name, err, tt.want)
		}
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "first-486"}); n != 2 {
		t.Errorf("journal: first-486 fired %d times, want 2 (once per user)", n)
	}
}
