package faults

import "slices"

// Corrupt passes a copy with Action.Count bytes flipped in Action.Target.
const Corrupt ActionKind = 6

// corruptAction flips count bytes (default 1, at most 65555) of the
// message's header, first attribute value or FINGERPRINT.
type corruptAction struct{}

var corruptTargets = []string{"header", "attribute", "fingerprint"}

var corruptSpec = actionSpec{name: "corrupt", kind: Corrupt, params: []string{"target", "count"}}

func (corruptAction) spec() actionSpec { return corruptSpec }

func (corruptAction) check(v *ruleValidator, field string, a *Action, _ *Match) {
	if !slices.Contains(corruptTargets, a.Target) {
		v.add(field+".target", "unknown target %q (want header, attribute or fingerprint)", a.Target)
	}
	v.bounded(field+".count", a.Count, 0, maxMessage)
}

func (corruptAction) compile(c *compiledAction) error {
	if c.a.Count == 0 {
		c.a.Count = 1
	}
	return nil
}
