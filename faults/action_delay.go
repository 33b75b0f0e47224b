package faults

import "time"

// Delay passes a copy of the message after Verdict.Delay.
const Delay ActionKind = 3

// MaxDelay bounds Action.Delay and Action.Jitter.
const MaxDelay = time.Hour

// delayAction holds the message for delay, plus or minus up to jitter
// (rolled per message on the engine's RNG), then passes it.
type delayAction struct{}

var delaySpec = actionSpec{name: "delay", kind: Delay, params: []string{"delay", "jitter"}}

func (delayAction) spec() actionSpec { return delaySpec }

func (delayAction) check(v *ruleValidator, field string, a *Action, _ *Match) {
	if a.Delay <= 0 || a.Delay.D() > MaxDelay {
		v.add(field+".delay", "must be greater than 0 and at most %v, got %v", MaxDelay, a.Delay)
	}
	if a.Jitter < 0 || a.Jitter.D() > MaxDelay {
		v.add(field+".jitter", "must be between 0 and %v, got %v", MaxDelay, a.Jitter)
	}
}

func (delayAction) describe(a *Action) string { return "delay " + a.Delay.String() }

func (delayAction) compile(c *compiledAction) error {
	c.delay, c.jitter = c.a.Delay.D(), c.a.Jitter.D()
	return nil
}

// DelayOverflow passes at once a message a delay rule fired on, because the
// engine's Holder had no room to hold it. It is journaled as
// "delay_overflow", not as "delay".
const DelayOverflow ActionKind = 9

// Holder holds delayed messages for whoever acts on verdicts (the server,
// with one budget for all its sockets). The engine asks it before it
// records a delay.
type Holder interface {
	// Hold reserves room for one more delayed message of size bytes and
	// reports true, or reports false when there is none. Room reserved for
	// a Delay verdict is the verdict's: whoever acts on it holds the
	// message in it, and frees it when the message goes.
	Hold(size int) bool
}

// hold completes v, the verdict of a delay action: how long, or, when the
// holder has no room for p, a DelayOverflow.
func (e *Engine) hold(v *Verdict, act *compiledAction, p *Packet) {
	if e.holder != nil && !e.holder.Hold(len(p.Data)) {
		v.Kind = DelayOverflow
		return
	}
	v.Delay = e.delayOf(act)
}

// delayOf returns how long a delay verdict of act holds its message: the
// delay plus a jitter rolled uniformly in [-jitter, +jitter], never below
// zero. Validation bounds both by MaxDelay, so 2*jitter+1 cannot overflow.
func (e *Engine) delayOf(act *compiledAction) time.Duration {
	d := act.delay
	if act.jitter > 0 {
		e.rngMu.Lock()
		defer e.rngMu.Unlock()
		d += time.Duration(e.rng.Int64N(int64(2*act.jitter)+1)) - act.jitter
	}
	return max(d, 0)
}
