package faults

// Duplicate passes the message and Action.Copies more copies.
const Duplicate ActionKind = 4

// MaxCopies bounds Action.Copies.
const MaxCopies = 100

// duplicateAction passes the message and then copies more of it (default 1).
type duplicateAction struct{}

var duplicateSpec = actionSpec{name: "duplicate", kind: Duplicate, params: []string{"copies"}}

func (duplicateAction) spec() actionSpec { return duplicateSpec }

func (duplicateAction) check(v *ruleValidator, field string, a *Action, _ *Match) {
	v.bounded(field+".copies", a.Copies, 0, MaxCopies)
}

func (duplicateAction) compile(c *compiledAction) error {
	if c.a.Copies == 0 {
		c.a.Copies = 1
	}
	return nil
}
