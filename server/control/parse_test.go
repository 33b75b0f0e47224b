package control_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server/control"
)

// rules.parse reads rules with the CLI's reader: the rules a text holds, or
// every problem as `stunfault rules add` prints it, each with its line.
// It changes no rule.
func TestParseRules(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	for _, tc := range []struct {
		name      string
		text      string
		wantIDs   []string
		wantLines []int    // of each problem
		wantMsgs  []string // each problem's message starts with it
	}{
		{name: "toml", text: "[[rules]]\nid = \"a\"\n[rules.match]\nmethods = [\"binding\"]\n[rules.action]\ntype = \"drop\"\n",
			wantIDs: []string{"a"}},
		{name: "json lines", text: `{"id":"a","action":{"type":"drop"}}` + "\n" + `[{"id":"b","action":{"type":"drop"}}]`,
			wantIDs: []string{"a", "b"}},
		{name: "toml unknown method", text: "[[rules]]\nid = \"a\"\n[rules.match]\nmethods = [\"bindng\"]\n[rules.action]\ntype = \"drop\"\n",
			wantLines: []int{4}, wantMsgs: []string{`input:4: rules[0].match.methods[0]: unknown method "bindng"`}},
		{name: "json two bad lines", text: `{"id":"a","methds":[]}` + "\n" + `{"id":"b","action":{"type":"drop"}}` + "\n" + `{"id":"c","priority":"high"}`,
			wantLines: []int{1, 3}, wantMsgs: []string{`input:1: unknown field "methds"`, "input:3: "}},
		{name: "a whole config", text: "[http]\naddress = \"127.0.0.1:0\"\n",
			wantMsgs: []string{"input: has [http], not only [[rules]]"}},
		{name: "empty", text: " \n", wantMsgs: []string{"input: empty: no rules to load"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := c.ParseRules(ctx(t), tc.text)
			if tc.wantMsgs == nil {
				var ids []string
				for _, r := range rules {
					ids = append(ids, r.ID)
				}
				if err != nil || !slices.Equal(ids, tc.wantIDs) {
					t.Fatalf("got %v, %v; want rules %v", ids, err, tc.wantIDs)
				}
				return
			}
			var ce *control.Error
			if !errors.As(err, &ce) || ce.Code != control.CodeInvalidRule {
				t.Fatalf("got %v, %v; want invalid_rule", rules, err)
			}
			// The messages are the CLI's: config.ParseRules's, one per problem.
			_, cliErr := config.ParseRules([]byte(tc.text), "input")
			var want config.Errors
			if !errors.As(cliErr, &want) || len(want) != len(tc.wantMsgs) {
				t.Fatalf("config.ParseRules: %v, want %d problems", cliErr, len(tc.wantMsgs))
			}
			got := []control.ErrorDetail{{Field: ce.Field, Line: ce.Line, Message: ce.Message}}
			if len(want) > 1 {
				got = ce.Details
				if !strings.HasSuffix(ce.Message, "(and 1 more)") {
					t.Errorf("message %q: want it to say there is 1 more", ce.Message)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d problems %+v, want %d", len(got), got, len(want))
			}
			for i, d := range got {
				if d.Message != want[i].Error() || !strings.HasPrefix(d.Message, tc.wantMsgs[i]) || d.Field != want[i].Field {
					t.Errorf("problem %d: got %q (field %q), want the CLI's %q, starting %q", i, d.Message, d.Field, want[i].Error(), tc.wantMsgs[i])
				}
				if tc.wantLines != nil && d.Line != tc.wantLines[i] {
					t.Errorf("problem %d: line %d, want %d", i, d.Line, tc.wantLines[i])
				}
			}
		})
	}
	if n := len(ts.b.eng.List()); n != 0 {
		t.Errorf("%d rules after rules.parse, want none added", n)
	}
	if _, err := c.Call(ctx(t), control.OpRulesParse, struct{}{}, nil); codeOf(t, err) != control.CodeBadRequest {
		t.Errorf("rules.parse without text: %v, want bad_request", err)
	}
}
