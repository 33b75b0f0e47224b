package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/server/servertest"
)

// TestScenarioLoad loads a config file's scenarios into a running server
// (which has none), activates one and sees its 403 on a real Binding; a
// second load replaces it; bad files change nothing and exit 2.
func TestScenarioLoad(t *testing.T) {
	srv := servertest.New(t)
	url := srv.ControlURL()
	stunAddr := srv.STUNAddr().String()

	out, err := runCmd(t, "scenario", "outage", "-control", url)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "the server has no scenarios") || !strings.Contains(err.Error(), "stunfault scenario load FILE") {
		t.Errorf("scenario NAME on a server without scenarios: %v (status %d), want a hint to load some\n%s", err, exitCode(err), out)
	}

	file := writeFile(t, "scenarios.toml", `
[server]
realm = "ignored.test"

[scenarios.outage]
description = "403 on every Binding"
[[scenarios.outage.rules]]
id = "outage-403"
match = { methods = ["binding"] }
action = { type = "error", code = 403 }

[scenarios.calm]
[[scenarios.calm.rules]]
id = "calm-pass"
match = { methods = ["allocate"] }
action = { type = "pass" }
`)
	out, err = runCmd(t, "scenario", "load", file, "-control", url)
	if err != nil || !strings.Contains(out, "loaded 2 scenarios; added calm, outage") || !strings.Contains(out, "ignoring [server]") {
		t.Fatalf("scenario load: %v\n%s", err, out)
	}
	if code := bindingCode(t, stunAddr); code != 0 {
		t.Errorf("after load, before activating: Binding got %d, want a success (loading activates nothing)", code)
	}
	if out, err = runCmd(t, "scenario", "outage", "-control", url); err != nil {
		t.Fatalf("scenario outage: %v\n%s", err, out)
	}
	if code := bindingCode(t, stunAddr); code != 403 {
		t.Errorf("after activating the loaded scenario: Binding got %d, want 403", code)
	}

	again := writeFile(t, "again.toml", `
[scenarios.outage]
[[scenarios.outage.rules]]
id = "outage-500"
match = { methods = ["binding"] }
action = { type = "error", code = 500 }
`)
	if out, err = runCmd(t, "scenario", "load", again, "-control", url); err != nil || !strings.Contains(out, "loaded 1 scenario; replaced outage") {
		t.Fatalf("scenario load (replace): %v\n%s", err, out)
	}

	rev := srv.Faults().Revision()
	for name, content := range map[string]string{
		"rules only":  "[[rules]]\nid = \"x\"\naction = { type = \"drop\" }\n",
		"empty":       "",
		"bad method":  "[scenarios.s]\n[[scenarios.s.rules]]\nmatch = { methods = [\"bindng\"] }\naction = { type = \"drop\" }\n",
		"bad webhook": "[scenarios.s]\n[[scenarios.s.rules]]\nmatch = { webhook = { name = \"nope\", min_inflight = 1 } }\naction = { type = \"drop\" }\n",
	} {
		out, err := runCmd(t, "scenario", "load", writeFile(t, "bad.toml", content), "-control", url)
		if exitCode(err) != 2 {
			t.Errorf("%s: status %d (%v), want 2\n%s", name, exitCode(err), err, out)
		}
		switch name {
		case "rules only":
			if !strings.Contains(err.Error(), "no [scenarios.NAME] tables to load (it has [[rules]])") {
				t.Errorf("rules only: %v", err)
			}
		case "bad method":
			if !strings.Contains(err.Error(), `bad.toml:3: scenarios.s.rules[0].match.methods[0]: unknown method "bindng"`) {
				t.Errorf("bad method: %v", err)
			}
		case "bad webhook":
			if !strings.Contains(err.Error(), `unknown webhook "nope"`) {
				t.Errorf("bad webhook: %v", err)
			}
		}
	}
	if got := srv.Faults().Revision(); got != rev {
		t.Errorf("refused loads changed the revision from %d to %d", rev, got)
	}
	if got := srv.Faults().Scenarios(); strings.Join(got, ",") != "calm,outage" {
		t.Errorf("scenarios after refused loads: %v, want calm,outage", got)
	}
}

// TestScenariosListEmpty checks that scenarios.list on a server without
// scenarios carries "scenarios": [], not an empty object.
func TestScenariosListEmpty(t *testing.T) {
	srv := servertest.New(t)
	resp, err := http.Post(srv.HTTPURL()+"/api/scenarios.list", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var reply struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if got := string(reply.Result["scenarios"]); got != "[]" {
		t.Errorf("scenarios.list result %s: scenarios = %q, want []", body, got)
	}
}
