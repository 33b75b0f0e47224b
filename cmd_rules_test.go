package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/servertest"
)

// startControl starts a stunfault for the test and returns its engine
// and control URL.
func startControl(t *testing.T) (*faults.Engine, string) {
	t.Helper()
	srv := servertest.New(t)
	return srv.Faults(), srv.ControlURL()
}

// runCmd runs the command in-process and returns its output and error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, &out, &errb)
	return out.String() + errb.String(), err
}

func decideBinding(eng *faults.Engine) faults.Verdict {
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	return eng.Decide(&faults.Packet{Data: m.Raw, Dir: faults.In, Transport: faults.UDP, Client: netip.MustParseAddrPort("127.0.0.1:5000")})
}

func TestCLIRules(t *testing.T) {
	eng, url := startControl(t)
	jsonFile := writeFile(t, "rules.json", `[{"id":"r403","labels":{"test":"cli"},"match":{"methods":["binding"]},"action":{"type":"error","code":403,"reason":"Forbidden"}}]`)

	rev := eng.Revision()
	out, err := runCmd(t, "rules", "add", "-control", url, jsonFile)
	if err != nil || !strings.Contains(out, fmt.Sprintf("added r403 (revision %d)", rev+1)) {
		t.Fatalf("rules add: %v\n%s", err, out)
	}
	if v := decideBinding(eng); v.Rule != "r403" {
		t.Fatalf("after rules add: got %v by %q, want the 403", v.Kind, v.Rule)
	}
	out, err = runCmd(t, "rules", "list", "-control", url)
	if err != nil || !strings.Contains(out, "ID") || !strings.Contains(out, "r403") || !strings.Contains(out, "error 403 Forbidden") || !strings.Contains(out, "methods=binding") {
		t.Errorf("rules list: %v\n%s", err, out)
	}
	out, err = runCmd(t, "rules", "get", "r403", "-json", "-control", url)
	if err != nil || !strings.Contains(out, `"fired": 1`) {
		t.Errorf("rules get -json: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "rules", "disable", "-control", url, "r403"); err != nil || !strings.Contains(out, "disabled r403") {
		t.Errorf("rules disable: %v\n%s", err, out)
	}
	if v := decideBinding(eng); v.Fired() {
		t.Errorf("after rules disable: got %v, want pass", v.Kind)
	}
	if _, err = runCmd(t, "rules", "enable", "-control", url, "r403"); err != nil {
		t.Errorf("rules enable: %v", err)
	}
	if out, err = runCmd(t, "rules", "update", "-control", url, "r403", `{"action":{"code":500}}`); err != nil {
		t.Errorf("rules update: %v\n%s", err, out)
	}
	if v := decideBinding(eng); v.Action == nil || v.Action.Code != 500 {
		t.Errorf("after rules update: got %+v, want 500", v)
	}

	tomlFile := writeFile(t, "rules.toml", `
[[rules]]
id = "drop-allocate"
[rules.match]
methods = ["allocate"]
[rules.action]
type = "drop"
`)
	out, err = runCmd(t, "rules", "replace", "-control", url, tomlFile)
	if err != nil || !strings.Contains(out, "added drop-allocate; removed r403") {
		t.Errorf("rules replace: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "rules", "remove", "-control", url, "drop-allocate"); err != nil || len(eng.List()) != 0 {
		t.Errorf("rules remove: %v\n%s", err, out)
	}
	if _, err = runCmd(t, "rules", "add", "-control", url, jsonFile); err != nil {
		t.Fatal(err)
	}
	if out, err = runCmd(t, "rules", "remove", "-label", "test=cli", "-control", url); err != nil || !strings.Contains(out, "removed 1 rule (") {
		t.Errorf("rules remove -label: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "rules", "clear", "-control", url); err != nil || !strings.Contains(out, "removed 0 rules") {
		t.Errorf("rules clear: %v\n%s", err, out)
	}
}

func TestCLIRulesErrors(t *testing.T) {
	eng, url := startControl(t)
	bad := writeFile(t, "bad.json", `{"id":"typo","match":{"methods":["bindng"]},"action":{"type":"drop"}}`)
	out, err := runCmd(t, "rules", "add", "-control", url, bad)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `match.methods[0]: unknown method "bindng"`) {
		t.Errorf("bad rule: got exit %d, %v\n%s", exitCode(err), err, out)
	}
	badTOML := writeFile(t, "bad.toml", "[[rules]]\nid = \"x\"\n[rules.action]\ntype = \"explode\"\n")
	if _, err := runCmd(t, "rules", "add", "-control", url, badTOML); exitCode(err) != 2 || !strings.Contains(err.Error(), ":4") {
		t.Errorf("bad TOML rule: got exit %d, %v; want 2 with line 4", exitCode(err), err)
	}
	if _, err := runCmd(t, "rules", "get", "-control", url, "nope"); exitCode(err) != 2 || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("unknown id: got exit %d, %v", exitCode(err), err)
	}
	if _, err := runCmd(t, "rules", "frobnicate"); exitCode(err) != 2 {
		t.Errorf("unknown subcommand: got exit %d, %v", exitCode(err), err)
	}
	if _, err := runCmd(t, "rules", "get", "-control", url); exitCode(err) != 2 {
		t.Errorf("get without ID: got exit %d, %v", exitCode(err), err)
	}
	if _, err := runCmd(t, "rules", "list", "-control", "ws://127.0.0.1:1/control"); exitCode(err) != 1 || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable server: got exit %d, %v; want 1", exitCode(err), err)
	}
	if len(eng.List()) != 0 {
		t.Error("a bad command changed the rules")
	}
}

func TestCLIScenarioJournalEventsStats(t *testing.T) {
	eng, url := startControl(t)
	r := faults.Rule{ID: "s403", Labels: map[string]string{"lab": "1"}, Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403}}
	if err := eng.SetScenarios(map[string]faults.Scenario{"screenpop": {Rules: []faults.Rule{r}}, "calm": {}}); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "scenario", "-control", url)
	if err != nil || out != "  calm\n  screenpop\n" {
		t.Errorf("scenario list: %v\n%q", err, out)
	}
	if out, err = runCmd(t, "scenario", "-control", url, "screenpop"); err != nil || !strings.Contains(out, "activated screenpop") {
		t.Errorf("scenario activate: %v\n%s", err, out)
	}
	if out, _ = runCmd(t, "scenario", "-control", url); !strings.Contains(out, "* screenpop") {
		t.Errorf("active scenario not marked:\n%s", out)
	}
	if _, err = runCmd(t, "scenario", "-control", url, "nope"); exitCode(err) != 2 {
		t.Errorf("unknown scenario: got exit %d, %v", exitCode(err), err)
	}

	for range 3 {
		decideBinding(eng)
	}
	if out, err = runCmd(t, "journal", "count", "-control", url, "-rule", "s403"); err != nil || out != "3\n" {
		t.Errorf("journal count: %v\n%q", err, out)
	}
	out, err = runCmd(t, "journal", "-control", url, "-label", "lab=1", "-limit", "2")
	if err != nil || strings.Count(out, "s403") != 2 || !strings.Contains(out, "binding/request") || !strings.Contains(out, "127.0.0.1:5000") {
		t.Errorf("journal query: %v\n%s", err, out)
	}
	out, err = runCmd(t, "journal", "verify", "-control", url, "-method", "allocate", "-expect", "1")
	if exitCode(err) != 1 || !strings.Contains(out, "expected 1, got 0") || !strings.Contains(out, "failed [method]") {
		t.Errorf("journal verify mismatch: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if _, err = runCmd(t, "journal", "-control", url, "-method", "bindng"); exitCode(err) != 2 {
		t.Errorf("journal with a bad method: got exit %d, %v", exitCode(err), err)
	}

	out, err = runCmd(t, "events", "-control", url, "-since", "1", "-n", "2")
	if err != nil || !strings.Contains(out, "#2 ") || !strings.Contains(out, "#3 ") || strings.Contains(out, "#1 ") {
		t.Errorf("events -since 1 -n 2: %v\n%s", err, out)
	}
	out, err = runCmd(t, "events", "-control", url, "-since", "0", "-n", "1", "-json")
	if err != nil || !strings.Contains(out, `"event":"decision"`) || !strings.Contains(out, `"seq":1`) {
		t.Errorf("events -json: %v\n%s", err, out)
	}

	out, err = runCmd(t, "stats", "-control", url)
	if err != nil || !strings.Contains(out, "scenario screenpop") || !strings.Contains(out, "journal: 3 entries, last seq 3") || !strings.Contains(out, "s403") ||
		!regexp.MustCompile(`listening: udp \S+, \d+ read loops? \(datagrams read: \d+`).MatchString(out) {
		t.Errorf("stats: %v\n%s", err, out)
	}
}
