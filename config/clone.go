package config

import (
	"maps"
	"slices"

	"github.com/stunfault/stunfault/faults"
)

// Clone returns a deep copy of c: changing the copy's slices, maps or rules
// leaves c as it was.
func (c Config) Clone() Config {
	c.Listen = slices.Clone(c.Listen)
	c.Relay.AllowPeers = slices.Clone(c.Relay.AllowPeers)
	c.Users = slices.Clone(c.Users)
	c.HTTP.AllowedOrigins = slices.Clone(c.HTTP.AllowedOrigins)
	c.Webhooks = maps.Clone(c.Webhooks) // a Webhook holds no references
	c.Rules = cloneRules(c.Rules)
	if c.Scenarios != nil {
		scenarios := make(map[string]Scenario, len(c.Scenarios))
		for name, s := range c.Scenarios {
			s.Rules = cloneRules(s.Rules)
			scenarios[name] = s
		}
		c.Scenarios = scenarios
	}
	return c
}

func cloneRules(rules []faults.Rule) []faults.Rule {
	if rules == nil {
		return nil
	}
	out := make([]faults.Rule, len(rules))
	for i, r := range rules {
		out[i] = cloneRule(r)
	}
	return out
}

func cloneRule(r faults.Rule) faults.Rule {
	r.Labels = maps.Clone(r.Labels)
	r.Enabled = clonePtr(r.Enabled)
	r.Probability = clonePtr(r.Probability)
	m := &r.Match
	m.Methods = slices.Clone(m.Methods)
	m.Classes = slices.Clone(m.Classes)
	m.Transports = slices.Clone(m.Transports)
	m.Sources = slices.Clone(m.Sources)
	m.Authenticated = clonePtr(m.Authenticated)
	m.Attributes = slices.Clone(m.Attributes)
	for i := range m.Attributes {
		m.Attributes[i].Present = clonePtr(m.Attributes[i].Present)
	}
	m.Webhook = clonePtr(m.Webhook)
	r.Action = cloneAction(r.Action)
	return r
}

func cloneAction(a faults.Action) faults.Action {
	if a.Then != nil {
		then := cloneAction(*a.Then)
		a.Then = &then
	}
	return a
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
