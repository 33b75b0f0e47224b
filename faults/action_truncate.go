package faults

// Truncate passes the message cut to Action.Length bytes.
const Truncate ActionKind = 5

// truncateAction passes the first length bytes of the message (0..65555,
// the largest STUN message; 0 keeps nothing).
type truncateAction struct{}

var truncateSpec = actionSpec{name: "truncate", kind: Truncate, params: []string{"length"}}

func (truncateAction) spec() actionSpec { return truncateSpec }

func (truncateAction) check(v *ruleValidator, field string, a *Action, _ *Match) {
	v.bounded(field+".length", a.Length, 0, maxMessage)
}

func (truncateAction) compile(*compiledAction) error { return nil }
