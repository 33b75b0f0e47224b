package faults

// Pass hands the message on unchanged. It is the zero ActionKind: the kind
// of the zero Verdict, when no rule fired, too.
const Pass ActionKind = 0

// passAction lets the message through unchanged. A rule with it still fires:
// it counts, is journaled and can move a machine on.
type passAction struct{}

var passSpec = actionSpec{name: "pass", kind: Pass}

func (passAction) spec() actionSpec { return passSpec }

func (passAction) check(*ruleValidator, string, *Action, *Match) {}

func (passAction) compile(*compiledAction) error { return nil }
