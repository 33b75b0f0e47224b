package faults

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Rate limit bounds: Action.Rate is in (0, MaxRate] messages per second,
// Action.Burst in [1, MaxBurst].
const (
	MaxRate  = 1e6
	MaxBurst = 1_000_000
)

// ratelimitAction lets rate messages per second through (a token bucket
// holding burst) and applies its then action to the excess. The engine
// resolves it: a Verdict never has a ratelimit kind of its own, but Pass or
// the kind of then, so then's scope is the rule's.
type ratelimitAction struct{}

var ratelimitSpec = actionSpec{name: "ratelimit", kind: rateLimited, params: []string{"rate", "burst", "then"}}

func (ratelimitAction) spec() actionSpec { return ratelimitSpec }

func (ratelimitAction) check(v *ruleValidator, field string, a *Action, m *Match) {
	if math.IsNaN(a.Rate) || a.Rate <= 0 || a.Rate > MaxRate {
		v.add(field+".rate", "must be greater than 0 and at most %g (messages per second), got %v", float64(MaxRate), a.Rate)
	}
	v.bounded(field+".burst", a.Burst, 1, MaxBurst)
	if a.Then == nil {
		v.add(field+".then", "required (the action for messages over the rate, such as { type = \"drop\" })")
	} else {
		v.action(field+".then", a.Then, m, true)
	}
}

func (ratelimitAction) describe(a *Action) string {
	s := fmt.Sprintf("ratelimit %g/s", a.Rate)
	if a.Then != nil {
		s += " then " + a.Then.String()
	}
	return s
}

func (ratelimitAction) compile(c *compiledAction) error {
	a := c.a
	if a.Then == nil {
		return &FieldError{Field: "action.then", Msg: "required"}
	}
	then, err := compileAction(a.Then)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Field = "action.then" + strings.TrimPrefix(fe.Field, "action")
		}
		return err
	}
	c.limited = true
	c.rate = a.Rate
	c.burst = float64(max(a.Burst, 1))
	c.then = &then
	return nil
}
