package faults

import (
	"testing"
)

// namedSignals is a Signals that knows its webhooks, as webhook.Hub does.
type namedSignals struct {
	fakeSignals
	names []string
}

func (s *namedSignals) Names() []string { return s.names }

// The engine refuses rules naming a webhook its Signals do not have, with
// the config's words, on every way in.
func TestEngineRefusesUnknownWebhook(t *testing.T) {
	e := NewEngine(EngineOptions{Signals: &namedSignals{names: []string{"servicenow"}}})
	crm := Rule{ID: "crm", Match: Match{Webhook: &WebhookMatch{Name: "crm", MinInflight: 1}}, Action: Action{Type: "drop"}}
	known := Rule{ID: "ok", Match: Match{Webhook: &WebhookMatch{Name: "servicenow", MinInflight: 1}}, Action: Action{Type: "drop"}}
	anyHook := Rule{ID: "any", Match: Match{Webhook: &WebhookMatch{MinInflight: 1}}, Action: Action{Type: "drop"}}
	bad := crm
	bad.Action = Action{Type: "bogus"}

	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"Add", func() error { _, err := e.Add(crm); return err },
			`faults: rule "crm": match.webhook.name: unknown webhook "crm" (have servicenow)`},
		{"Add with another error", func() error { _, err := e.Add(bad); return err },
			"faults: rule \"crm\": action.type: unknown action type \"bogus\""},
		{"Replace", func() error { _, err := e.Replace([]Rule{known, crm}); return err },
			`faults: rules[1].match.webhook.name: unknown webhook "crm" (have servicenow)`},
		{"SetScenarios", func() error { return e.SetScenarios(map[string]Scenario{"s": {Rules: []Rule{crm}}}) },
			`faults: scenarios.s.rules[0].match.webhook.name: unknown webhook "crm" (have servicenow)`},
		{"Update", func() error {
			_, err := e.Update("ok", func(r *Rule) error { r.Match.Webhook.Name = "crm"; return nil })
			return err
		}, `faults: rule "ok": match.webhook.name: unknown webhook "crm" (have servicenow)`},
	}
	mustAdd(t, e, known)
	mustAdd(t, e, anyHook)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || len(err.Error()) < len(tt.want) || err.Error()[:len(tt.want)] != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if fes := FieldErrors(func() error { _, err := e.Add(bad); return err }()); len(fes) != 2 || fes[1].Field != "match.webhook.name" {
		t.Errorf("Add(bad) field errors = %v, want the action's and the webhook name's", fes)
	}

	// Without names (Signals that do not tell, or none), any name goes.
	for _, sig := range []Signals{&fakeSignals{}, nil} {
		if _, err := NewEngine(EngineOptions{Signals: sig}).Add(crm); err != nil {
			t.Errorf("Add with Signals %T: %v", sig, err)
		}
	}
}

// Names rules are known by are valid UTF-8.
func TestRuleNamesAreUTF8(t *testing.T) {
	base := Rule{Action: Action{Type: "drop"}}
	tests := []struct {
		name string
		edit func(*Rule)
		want string
	}{
		{"id", func(r *Rule) { r.ID = "a\xffb" }, `id: must be valid UTF-8, got "a\xffb"`},
		{"label key", func(r *Rule) { r.Labels = map[string]string{"k\xc3": "v"} }, `labels: key "k\xc3" must be valid UTF-8`},
		{"label value", func(r *Rule) { r.Labels = map[string]string{"test": "\xed\xa0\x80"} }, `labels.test: must be valid UTF-8, got "\xed\xa0\x80"`},
		{"machine", func(r *Rule) { r.Machine = "m\x80"; r.SetsState = "s" }, `machine: must be valid UTF-8, got "m\x80"`},
		{"requires_state", func(r *Rule) { r.Machine = "m"; r.RequiresState = "\xfe" }, `requires_state: must be valid UTF-8, got "\xfe"`},
		{"sets_state", func(r *Rule) { r.Machine = "m"; r.SetsState = "\xc0\xaf" }, `sets_state: must be valid UTF-8, got "\xc0\xaf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base.Clone()
			tt.edit(&r)
			if err := r.Validate(); err == nil || err.Error() != tt.want {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
			if _, err := NewEngine(EngineOptions{}).Add(r); err == nil {
				t.Error("Engine.Add accepted it")
			}
		})
	}
	ok := base.Clone()
	ok.ID, ok.Labels = "règle-ünïcode", map[string]string{"équipe": "café ☕"}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid UTF-8 refused: %v", err)
	}
}
