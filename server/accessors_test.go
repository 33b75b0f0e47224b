package server_test

import (
	"testing"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// Config returns a deep copy: changing its slices, maps and rules leaves
// the server's own configuration as it was.
func TestConfigIsACopy(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Rules = []faults.Rule{{ID: "r", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}}}
	cfg.Webhooks = map[string]config.Webhook{"hook": {Mode: "sync", Status: 200, MaxBodyBytes: 1024}}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	got := srv.Config()
	got.Users[0].Name = "mallory"
	got.Listen[0].Address = "192.0.2.1:1"
	got.Rules[0].Match.Methods[0] = "allocate"
	delete(got.Webhooks, "hook")
	again := srv.Config()
	if again.Users[0].Name == "mallory" || again.Listen[0].Address == "192.0.2.1:1" ||
		again.Rules[0].Match.Methods[0] != "binding" || len(again.Webhooks) != 1 {
		t.Errorf("changing a Config() result changed the server's: %+v", again)
	}
}

// New keeps a deep copy of the config it is given: the caller changing its
// own slices and maps afterwards changes nothing in the server.
func TestNewCopiesTheConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Rules = []faults.Rule{{ID: "r", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}}}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg.Users[0].Name = "mallory"
	cfg.Listen[0].Address = "192.0.2.1:1"
	cfg.Rules[0].Match.Methods[0] = "allocate"
	if got := srv.Config(); got.Users[0].Name == "mallory" || got.Listen[0].Address == "192.0.2.1:1" || got.Rules[0].Match.Methods[0] != "binding" {
		t.Errorf("changing the config given to New changed the server's: %+v", got)
	}
}
