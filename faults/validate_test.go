package faults

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// vref returns a pointer to a copy of v.
func vref[T any](v T) *T { return &v }

func TestRuleValidateGood(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
	}{
		{"drop everything", Rule{Action: Action{Type: "drop"}}},
		{"pass", Rule{Action: Action{Type: "pass"}}},
		{"error 403 on binding", Rule{
			Match:  Match{Methods: []string{"binding"}, Classes: []string{"request"}},
			Action: Action{Type: "error", Code: 403, Reason: "Forbidden", Integrity: "auto"},
		}},
		{"error 300 with alternate", Rule{Action: Action{Type: "error", Code: 300, Alternate: "127.0.0.1:3479"}}},
		{"error 300 with ipv6 alternate", Rule{Action: Action{Type: "error", Code: 300, Alternate: "[::1]:3479"}}},
		{"error on mixed methods", Rule{
			Match:  Match{Methods: []string{"send", "allocate"}},
			Action: Action{Type: "error", Code: 486},
		}},
		{"delay with jitter", Rule{Action: Action{Type: "delay", Delay: Duration(time.Second), Jitter: Duration(time.Millisecond)}}},
		{"duplicate default copies", Rule{Action: Action{Type: "duplicate"}}},
		{"truncate", Rule{Action: Action{Type: "truncate", Length: 20}}},
		{"corrupt", Rule{Action: Action{Type: "corrupt", Target: "fingerprint", Count: 2}}},
		{"mapped_address", Rule{
			Match:  Match{Direction: "out", Methods: []string{"binding"}, Classes: []string{"success"}},
			Action: Action{Type: "mapped_address", Address: "203.0.113.7:40000"},
		}},
		{"close on tcp", Rule{Match: Match{Transports: []string{"tcp"}}, Action: Action{Type: "close"}}},
		{"ratelimit then drop", Rule{Action: Action{Type: "ratelimit", Rate: 10, Burst: 1, Then: &Action{Type: "drop"}}}},
		{"ratelimit then error", Rule{Action: Action{Type: "ratelimit", Rate: 0.5, Burst: 3, Then: &Action{Type: "error", Code: 508}}}},
		{"all match fields", Rule{
			ID: "x", Priority: -3, Probability: vref(0.5), Times: 3, After: 1, Every: 2, For: Duration(time.Minute),
			Machine: "m", RequiresState: "started", SetsState: "failed",
			Match: Match{
				Direction: "in", Transports: []string{"udp", "tcp"},
				Sources:  []string{"127.0.0.0/8", "::1", "10.1.2.3", "fd00::/8"},
				Username: "^alice", MinSize: 20, MaxSize: 200, Transmission: 2, Authenticated: vref(true),
				Attributes: []AttributeMatch{
					{Type: "USERNAME", Regex: "a+"},
					{Type: "xor_mapped_address", Present: vref(false)},
					{Type: "0x8022", MinLen: 1, MaxLen: 10},
					{Type: "32"},
					{Type: "password-algorithms"},
				},
				Webhook: &WebhookMatch{Name: "servicenow", MinInflight: 1, Body: "ticket_id", Window: Duration(time.Second)},
			},
			Action: Action{Type: "drop"},
		}},
		{"probability bounds", Rule{Probability: vref(0.0), Action: Action{Type: "drop"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rule.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestRuleValidateBad(t *testing.T) {
	tests := []struct {
		name   string
		rule   Rule
		fields []string // every field reported, in order
		msg    string   // a substring of the first message
	}{
		{"missing type", Rule{}, []string{"action.type"}, "required"},
		{"unknown type", Rule{Action: Action{Type: "explode"}}, []string{"action.type"}, `unknown action type "explode"`},
		{"unknown method", Rule{Match: Match{Methods: []string{"binding", "bindng"}}, Action: Action{Type: "drop"}},
			[]string{"match.methods[1]"}, `unknown method "bindng" (want one of binding, allocate, refresh, createpermission, channelbind, send, data, channeldata)`},
		{"unknown class", Rule{Match: Match{Classes: []string{"response"}}, Action: Action{Type: "drop"}},
			[]string{"match.classes[0]"}, `unknown class "response"`},
		{"unknown transport", Rule{Match: Match{Transports: []string{"tls"}}, Action: Action{Type: "drop"}},
			[]string{"match.transports[0]"}, `unknown transport "tls"`},
		{"bad direction", Rule{Match: Match{Direction: "both"}, Action: Action{Type: "drop"}},
			[]string{"match.direction"}, `unknown direction "both"`},
		{"bad source", Rule{Match: Match{Sources: []string{"127.0.0.1/8", "10.0.0/8"}}, Action: Action{Type: "drop"}},
			[]string{"match.sources[1]"}, `invalid CIDR "10.0.0/8"`},
		{"bad username regexp", Rule{Match: Match{Username: "a("}, Action: Action{Type: "drop"}},
			[]string{"match.username"}, `invalid regular expression "a(": missing closing )`},
		{"negative sizes", Rule{Match: Match{MinSize: -1, MaxSize: -2}, Action: Action{Type: "drop"}},
			[]string{"match.min_size", "match.max_size"}, "must not be negative, got -1"},
		{"min over max", Rule{Match: Match{MinSize: 100, MaxSize: 20}, Action: Action{Type: "drop"}},
			[]string{"match.min_size"}, "must not exceed max_size (20), got 100"},
		{"negative counters", Rule{Times: -1, After: -1, Every: -1, Match: Match{Transmission: -1}, Action: Action{Type: "drop"}},
			[]string{"times", "after", "every", "match.transmission"}, "negative"},
		{"negative for", Rule{For: Duration(-time.Second), Action: Action{Type: "drop"}}, []string{"for"}, "negative"},
		{"probability 2", Rule{Probability: vref(2.0), Action: Action{Type: "drop"}}, []string{"probability"}, "between 0 and 1, got 2"},
		{"probability NaN", Rule{Probability: vref(math.NaN()), Action: Action{Type: "drop"}}, []string{"probability"}, "between 0 and 1"},
		{"states without machine", Rule{RequiresState: "a", SetsState: "b", Action: Action{Type: "drop"}},
			[]string{"requires_state", "sets_state"}, "only with machine"},
		{"attribute type unknown", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "USERNAME"}, {Type: "USERNAM"}}}, Action: Action{Type: "drop"}},
			[]string{"match.attributes[1].type"}, `unknown attribute type "USERNAM"`},
		{"attribute type too big", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "0x10000"}}}, Action: Action{Type: "drop"}},
			[]string{"match.attributes[0].type"}, "unknown attribute type"},
		{"attribute type missing", Rule{Match: Match{Attributes: []AttributeMatch{{Contains: "x"}}}, Action: Action{Type: "drop"}},
			[]string{"match.attributes[0].type"}, "required"},
		{"attribute regex", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "REALM", Regex: "[", MinLen: 5, MaxLen: 4}}}, Action: Action{Type: "drop"}},
			[]string{"match.attributes[0].regex", "match.attributes[0].min_len"}, "invalid regular expression"},
		{"attribute absent with condition", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "REALM", Present: vref(false), Contains: "x"}}}, Action: Action{Type: "drop"}},
			[]string{"match.attributes[0].present"}, "contradicts"},
		{"webhook match", Rule{Match: Match{Webhook: &WebhookMatch{Name: "a b", MinInflight: -1, Body: "(", Window: Duration(-1)}}, Action: Action{Type: "drop"}},
			[]string{"match.webhook.name", "match.webhook.min_inflight", "match.webhook.body", "match.webhook.window"}, `invalid webhook name "a b"`},
		{"error code 200", Rule{Action: Action{Type: "error", Code: 200}}, []string{"action.code"}, "between 300 and 699, got 200"},
		{"error code missing", Rule{Action: Action{Type: "error"}}, []string{"action.code"}, "got 0"},
		{"error integrity", Rule{Action: Action{Type: "error", Code: 401, Integrity: "good"}}, []string{"action.integrity"}, `unknown integrity "good"`},
		{"error 300 without alternate", Rule{Action: Action{Type: "error", Code: 300}}, []string{"action.alternate"}, "required for code 300"},
		{"alternate without 300", Rule{Action: Action{Type: "error", Code: 403, Alternate: "127.0.0.1:1"}}, []string{"action.alternate"}, "only for code 300"},
		{"bad alternate", Rule{Action: Action{Type: "error", Code: 300, Alternate: "example.com:3478"}}, []string{"action.alternate"}, "invalid address"},
		{"error outbound", Rule{Match: Match{Direction: "out"}, Action: Action{Type: "error", Code: 403}}, []string{"match.direction"}, "direction must be in"},
		{"error on indication", Rule{Match: Match{Classes: []string{"indication", "success"}}, Action: Action{Type: "error", Code: 403}}, []string{"match.classes"}, "no request"},
		{"error on send", Rule{Match: Match{Methods: []string{"send", "channeldata"}}, Action: Action{Type: "error", Code: 403}}, []string{"match.methods"}, "never requests"},
		{"code on drop", Rule{Action: Action{Type: "drop", Code: 403}}, []string{"action.code"}, "not a parameter of drop"},
		{"delay zero", Rule{Action: Action{Type: "delay"}}, []string{"action.delay"}, "greater than 0"},
		{"delay with copies", Rule{Action: Action{Type: "delay", Delay: 1, Copies: 2}}, []string{"action.copies"}, "not a parameter of delay"},
		{"duplicate negative", Rule{Action: Action{Type: "duplicate", Copies: -1}}, []string{"action.copies"}, "negative"},
		{"truncate negative", Rule{Action: Action{Type: "truncate", Length: -1}}, []string{"action.length"}, "negative"},
		{"corrupt target", Rule{Action: Action{Type: "corrupt", Target: "body", Count: -1}}, []string{"action.target", "action.count"}, `unknown target "body"`},
		{"mapped_address inbound", Rule{Action: Action{Type: "mapped_address", Address: "1.2.3.4:5"}}, []string{"match.direction"}, `direction = "out"`},
		{"mapped_address missing address", Rule{Match: Match{Direction: "out"}, Action: Action{Type: "mapped_address"}}, []string{"action.address"}, "required"},
		{"mapped_address on allocate", Rule{
			Match:  Match{Direction: "out", Methods: []string{"binding", "allocate"}, Classes: []string{"error"}},
			Action: Action{Type: "mapped_address", Address: "1.2.3.4"},
		}, []string{"action.address", "match.methods[1]", "match.classes[0]"}, "invalid address"},
		{"close on udp", Rule{Action: Action{Type: "close"}}, []string{"match.transports"}, `transports = ["tcp"]`},
		{"close on both", Rule{Match: Match{Transports: []string{"udp", "tcp"}}, Action: Action{Type: "close"}}, []string{"match.transports"}, "only to TCP"},
		{"ratelimit empty", Rule{Action: Action{Type: "ratelimit"}}, []string{"action.rate", "action.burst", "action.then"}, "greater than 0"},
		{"ratelimit nested", Rule{Action: Action{Type: "ratelimit", Rate: 1, Burst: 1, Then: &Action{Type: "ratelimit"}}},
			[]string{"action.then.type"}, "may not itself be a ratelimit"},
		{"ratelimit then bad", Rule{Action: Action{Type: "ratelimit", Rate: 1, Burst: 1, Then: &Action{Type: "error", Code: 99, Copies: 1}}},
			[]string{"action.then.copies", "action.then.code"}, "not a parameter of error"},
		{"ratelimit then close on udp", Rule{Action: Action{Type: "ratelimit", Rate: 1, Burst: 1, Then: &Action{Type: "close"}}},
			[]string{"match.transports"}, "only to TCP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want errors on %v", tt.fields)
			}
			fes := FieldErrors(err)
			var got []string
			for _, fe := range fes {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("fields = %q, want %q (error: %v)", got, tt.fields, err)
			}
			if !strings.Contains(fes[0].Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", fes[0].Msg, tt.msg)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("errors.As(%T, *FieldError) = false", err)
			}
		})
	}
}

func TestFieldErrors(t *testing.T) {
	a := &FieldError{Field: "a", Msg: "x"}
	b := &FieldError{Field: "b", Msg: "y"}
	if got := FieldErrors(nil); got != nil {
		t.Errorf("FieldErrors(nil) = %v, want nil", got)
	}
	if got := FieldErrors(errors.New("plain")); got != nil {
		t.Errorf("FieldErrors(plain) = %v, want nil", got)
	}
	got := FieldErrors(fmt.Errorf("rule x: %w", errors.Join(a, errors.New("other"), b)))
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("FieldErrors(wrapped join) = %v, want [a b]", got)
	}
	if s := a.Error(); s != "a: x" {
		t.Errorf("Error() = %q, want %q", s, "a: x")
	}
}

func TestParseAttributeType(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"USERNAME", 0x0006, true},
		{"xor-mapped-address", 0x0020, true},
		{"Xor_Mapped_Address", 0x0020, true},
		{"SOFTWARE", 0x8022, true},
		{"PASSWORD-ALGORITHM", 0x001D, true},
		{"PASSWORD-ALGORITHMS", 0x8002, true},
		{"CONNECTION-ID", 0x002A, true},
		{"0x8028", 0x8028, true},
		{"0XFFFF", 0xFFFF, true},
		{"65535", 65535, true},
		{"65536", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"0x", 0, false},
		{"", 0, false},
		{"NOPE", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseAttributeType(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseAttributeType(%q) = %#x, %v; want %#x, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestKindsIsACopy(t *testing.T) {
	s := Kinds()
	s[0] = "changed"
	if Kinds()[0] == "changed" {
		t.Error("Kinds() returns the package's own slice")
	}
	if !slices.Contains(Kinds(), "mapped_address") {
		t.Errorf("Kinds() = %v, want mapped_address in it", Kinds())
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{"servicenow": true, "a-b_C9": true, "": false, "a b": false, "a/b": false, "é": false} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}
