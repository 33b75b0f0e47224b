package faults

// Drop discards the message.
const Drop ActionKind = 2

// dropAction discards the message, in either direction, on any transport.
type dropAction struct{}

var dropSpec = actionSpec{name: "drop", kind: Drop}

func (dropAction) spec() actionSpec { return dropSpec }

func (dropAction) check(*ruleValidator, string, *Action, *Match) {}

func (dropAction) compile(*compiledAction) error { return nil }
