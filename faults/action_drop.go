package faults

// Drop discards the message.
const Drop ActionKind = 2

// dropAction discards the message, in either direction, on any transport.
type dropAction struct{}

func (dropAction) spec() actionSpec { return actionSpec{name: "drop", kind: Drop} }

func (dropAction) check(*ruleValidator, string, *Action, *Match) {}

func (dropAction) compile(*compiledAction) error { return nil }
