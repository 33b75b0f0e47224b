package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/server/servertest"
)

// cliResult is what one run of the command showed the user.
type cliResult struct {
	stdout, stderr string
	err            error
	code           int
}

// text is stdout, stderr and the error as main prints it.
func (r cliResult) text() string {
	s := r.stdout + r.stderr
	if r.err != nil && r.code != 0 {
		s += "stunfault: " + r.err.Error() + "\n"
	}
	return s
}

// runCLI runs `stunfault args...` in-process with stdin, as a user would
// from a shell.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	err := runIO(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return cliResult{stdout: out.String(), stderr: errb.String(), err: err, code: exitCode(err)}
}

const (
	goodRuleJSON = `{"id":"good","match":{"methods":["binding"]},"action":{"type":"error","code":403}}`
	badRuleJSON  = `{"id":"bad","match":{"methods":["bindng"]},"action":{"type":"drop"}}`
)

// Loading rules is all or nothing, in every form: a bad rule anywhere
// leaves the rules as they were, exits 2 and names every problem; good
// rules go in as one change with one revision.
func TestRulesAddIsAllOrNothing(t *testing.T) {
	srv := servertest.New(t)
	ctl := srv.ControlURL()
	rev0 := srv.Faults().Revision()
	tests := []struct {
		name, file, stdin string
		want              []string // in the output
	}{
		{name: "JSON array, second rule bad", stdin: "[" + goodRuleJSON + "," + badRuleJSON + "]",
			want: []string{`rules[1].match.methods[0]: unknown method "bindng"`}},
		{name: "JSON lines, second rule bad", stdin: goodRuleJSON + "\n" + badRuleJSON + "\n",
			want: []string{`rules[1].match.methods[0]`}},
		{name: "rules object, both bad", stdin: `{"rules":[` + badRuleJSON + `,{"id":"worse","action":{"type":"error","code":42}}]}`,
			want: []string{`rules[0].match.methods[0]`, `rules[1].action.code`}},
		{name: "JSON lines, two undecodable lines", stdin: goodRuleJSON + "\n" + `{"id":"x","bogus":1}` + "\n" + `{"id":"y","priority":"high"}` + "\n",
			want: []string{`<stdin>:2: unknown field "bogus"`, `<stdin>:3: `, "priority"}},
		{name: "TOML, second rule bad", file: writeFile(t, "bad.toml", `
[[rules]]
id = "good"
match = { methods = ["binding"] }
action = { type = "error", code = 403 }

[[rules]]
id = "bad"
match = { methods = ["bindng"] }
action = { type = "drop" }
`), want: []string{"bad.toml:9:", `unknown method "bindng"`}},
		{name: "JSON syntax error", stdin: goodRuleJSON + "\n{\"id\": \n", want: []string{"<stdin>:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.file
			if src == "" {
				src = "-"
			}
			for _, sub := range []string{"add", "replace"} {
				r := runCLI(t, tt.stdin, "rules", sub, "-control", ctl, src)
				if r.code != 2 {
					t.Errorf("rules %s: exit status %d, want 2\n%s", sub, r.code, r.text())
				}
				for _, w := range tt.want {
					if !strings.Contains(r.text(), w) {
						t.Errorf("rules %s: output lacks %q:\n%s", sub, w, r.text())
					}
				}
				if n := len(srv.Faults().List()); n != 0 {
					t.Fatalf("rules %s: %d rules loaded, want none", sub, n)
				}
			}
		})
	}
	if rev := srv.Faults().Revision(); rev != rev0 {
		t.Errorf("revision %d after refused loads, want %d as before", rev, rev0)
	}
}

func TestRulesAddEveryFormIsOneChange(t *testing.T) {
	rule := func(id string) string {
		return `{"id":"` + id + `","match":{"methods":["binding"]},"action":{"type":"error","code":403}}`
	}
	tests := []struct {
		name, stdin, file string
		want              string // before " (revision N)"
	}{
		{name: "one JSON rule", stdin: rule("a"), want: "added a"},
		{name: "JSON array", stdin: "[" + rule("a") + ", " + rule("b") + "]", want: "added a, b"},
		{name: "rules object", stdin: `{"rules": [` + rule("a") + "," + rule("b") + "]}", want: "added a, b"},
		{name: "JSON lines", stdin: rule("a") + "\n" + rule("b") + "\n" + rule("c") + "\n", want: "added a, b, c"},
		{name: "TOML file", file: writeFile(t, "rules.toml", `
[[rules]]
id = "a"
match = { methods = ["binding"] }
action = { type = "error", code = 403 }

[[rules]]
id = "b"
match = { methods = ["allocate"] }
action = { type = "drop" }
`), want: "added a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servertest.New(t)
			src := tt.file
			if src == "" {
				src = "-"
			}
			rev := srv.Faults().Revision()
			r := runCLI(t, tt.stdin, "rules", "add", "-control", srv.ControlURL(), src)
			want := fmt.Sprintf("%s (revision %d)\n", tt.want, rev+1)
			if r.code != 0 || r.stdout != want {
				t.Fatalf("rules add: exit %d, stdout %q, want 0 and %q\n%s", r.code, r.stdout, want, r.text())
			}
			if got := srv.Faults().Revision(); got != rev+1 {
				t.Errorf("revision %d, want %d: one change", got, rev+1)
			}
			// Again: the same IDs replace the rules, still one change.
			r = runCLI(t, tt.stdin, "rules", "add", "-control", srv.ControlURL(), src)
			want = fmt.Sprintf("re%s (revision %d)\n", strings.Replace(tt.want, "added", "placed", 1), rev+2)
			if r.code != 0 || r.stdout != want {
				t.Errorf("rules add again: exit %d, stdout %q, want %q", r.code, r.stdout, want)
			}
		})
	}
}

// Input with no rules, or with more than rules, is refused, naming what it
// found, instead of exiting 0 having done nothing.
func TestRulesAddRefusesWhatIsNotRules(t *testing.T) {
	srv := servertest.New(t)
	tests := []struct {
		name, stdin, file string
		want              []string
	}{
		{name: "a whole config", file: "examples/lab/lab.toml", want: []string{"[[listen]]", "[http]", "[scenarios]", "[[users]]", "[webhooks]", "not only [[rules]]", "stunfault -config examples/lab/lab.toml"}},
		{name: "a [server] table", stdin: "[server]\nrealm = \"x\"\n", want: []string{"has [server], not only [[rules]]"}},
		{name: "rules beside a table", stdin: "[server]\nrealm = \"x\"\n[[rules]]\nid = \"a\"\naction = { type = \"drop\" }\n", want: []string{"has [server]"}},
		{name: "empty input", stdin: "", want: []string{"<stdin>: empty: no rules to load"}},
		{name: "blank input", stdin: "\n  \n", want: []string{"<stdin>: empty"}},
		{name: "TOML comment only", stdin: "# nothing\n", want: []string{"<stdin>: no rules in it"}},
		{name: "empty JSON array", stdin: "[]", want: []string{"<stdin>: no rules in it"}},
		{name: "rules object beside other keys", stdin: `{"rules":[], "server":{}}`, want: []string{`has ["server"] besides "rules"`}},
		{name: "a JSON config", stdin: `{"server":{"realm":"x"}}`, want: []string{`unknown field "server"`}},
		{name: "a JSON string", stdin: `"rules"`, want: []string{"want a rule object or an array of rules"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.file
			if src == "" {
				src = "-"
			}
			r := runCLI(t, tt.stdin, "rules", "add", "-control", srv.ControlURL(), src)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2\n%s", r.code, r.text())
			}
			for _, w := range tt.want {
				if !strings.Contains(r.text(), w) {
					t.Errorf("output lacks %q:\n%s", w, r.text())
				}
			}
		})
	}
	if n := len(srv.Faults().List()); n != 0 {
		t.Errorf("%d rules loaded, want none", n)
	}
}
