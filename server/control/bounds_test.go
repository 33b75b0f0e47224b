package control_test

import (
	"strings"
	"testing"

	"github.com/stunfault/stunfault/server/control"
)

// TestRuleActionBounds: rules.add over the socket refuses, as invalid_rule
// naming the field, the exact rule-action numbers that used to be accepted
// (and config check refuses the same: it is one Rule.Validate).
func TestRuleActionBounds(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	ws := rawDial(t, ts)
	tests := []struct {
		name, action, field, msg string
	}{
		{"jitter 1281024h", `{"type":"delay","delay":"1s","jitter":"1281024h"}`, "action.jitter", "between 0 and 1h0m0s"},
		{"copies 1000000", `{"type":"duplicate","copies":1000000}`, "action.copies", "between 0 and 100"},
		{"truncate length 1e5", `{"type":"truncate","length":100000}`, "action.length", "between 0 and 65555"},
		{"ratelimit rate 1e9", `{"type":"ratelimit","rate":1e9,"burst":1,"then":{"type":"drop"}}`, "action.rate", "at most 1e+06"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := roundTrip(t, ws, `{"id":1,"op":"rules.add","rule":{"id":"r","action":`+tt.action+`}}`)
			if rep.OK || rep.Error == nil || rep.Error.Code != control.CodeInvalidRule || rep.Error.Field != tt.field || !strings.Contains(rep.Error.Message, tt.msg) {
				t.Errorf("reply = %+v %+v, want invalid_rule at %s: ...%s...", rep, rep.Error, tt.field, tt.msg)
			}
			if n := len(ts.b.eng.List()); n != 0 {
				t.Errorf("the engine holds %d rules after a refused add", n)
			}
		})
	}
}

// TestRulePatternBounds: rules.add refuses, as invalid_rule naming the
// field, a pattern whose automaton is over its bound and a rule with too
// many attribute conditions, as config check does.
func TestRulePatternBounds(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	ws := rawDial(t, ts)
	tests := []struct {
		name, match, field, msg string
	}{
		{"automaton", `{"username":"[ab]*a[ab]{16}"}`, "match.username", `regular expression "[ab]*a[ab]{16}" needs more than 8192 automaton states`},
		{"attributes", `{"attributes":[` + strings.Repeat(`{"type":"SOFTWARE"},`, 8) + `{"type":"SOFTWARE"}]}`, "match.attributes", "9 conditions, at most 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := roundTrip(t, ws, `{"id":1,"op":"rules.add","rule":{"id":"r","match":`+tt.match+`,"action":{"type":"drop"}}}`)
			if rep.OK || rep.Error == nil || rep.Error.Code != control.CodeInvalidRule || rep.Error.Field != tt.field || !strings.Contains(rep.Error.Message, tt.msg) {
				t.Errorf("reply = %+v %+v, want invalid_rule at %s: ...%s...", rep, rep.Error, tt.field, tt.msg)
			}
			if n := len(ts.b.eng.List()); n != 0 {
				t.Errorf("the engine holds %d rules after a refused add", n)
			}
		})
	}
}
