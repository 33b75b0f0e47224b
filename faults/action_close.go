package faults

// Close closes the client's TCP connection.
const Close ActionKind = 8

// closeAction closes the client's TCP connection instead of passing the
// message, in either direction.
type closeAction struct{}

var closeSpec = actionSpec{name: "close", kind: Close, transports: 1 << TCP, about: "close applies only to TCP connections"}

func (closeAction) spec() actionSpec { return closeSpec }

func (closeAction) check(*ruleValidator, string, *Action, *Match) {}

func (closeAction) compile(*compiledAction) error { return nil }
