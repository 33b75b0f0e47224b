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
			scenarios[name] = s.Clone()
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
		out[i] = r.Clone()
	}
	return out
}
