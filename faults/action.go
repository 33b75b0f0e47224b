package faults

import (
	"fmt"
	"slices"
	"strings"
)

// An actionType is one kind of action a rule can take: the parameters it
// reads from [Action], how they are checked and compiled, and the
// directions and transports it applies to. Each lives in its own file
// (action_error.go, action_delay.go, ...) and is listed once in actionTypes;
// nothing else in the package names a kind. The server applies a fired
// verdict with one effect function per [ActionKind].
type actionType interface {
	// spec says what the action is and where it applies.
	spec() actionSpec
	// check reports problems with the parameters of a (at field: "action" or
	// "action.then") and with the rule's match m that only this action
	// type has. The common checks (unknown parameters, scope) are done
	// already.
	check(v *ruleValidator, field string, a *Action, m *Match)
	// compile fills in c from c.a, a private copy of the validated action
	// that compile may normalise (defaults filled in).
	compile(c *compiledAction) error
}

// actionSpec is the static description of an action type.
type actionSpec struct {
	// name is Action.Type ("error", "mapped_address").
	name string
	// kind is the Verdict.Kind the action yields. A ratelimit yields Pass or
	// its then's kind, and has rateLimited here.
	kind ActionKind
	// params are the Action fields (by TOML/JSON name) that belong to it:
	// setting any other is an error, so a typo'd type ("drop" with a code)
	// does not pass silently.
	params []string
	// dirs and transports are where the action can apply (bit 1<<Direction,
	// 1<<Transport); zero means everywhere. A rule whose match reaches
	// beyond them is rejected, naming the field.
	dirs, transports uint8
	// about says what the action does, for the scope error message
	// ("mapped_address rewrites outbound Binding success responses").
	about string
}

// NumKinds is one more than the largest ActionKind a Verdict can carry, so
// arrays indexed by kind (counters, effect tables) have this length.
const NumKinds = int(DelayOverflow) + 1

// rateLimited is the kind of a ratelimit in its own spec: never in a Verdict.
const rateLimited ActionKind = 255

// actionTypes is the registry: every action type, in the order error
// messages and Kinds list them.
var actionTypes = []actionType{
	errorAction{},
	dropAction{},
	delayAction{},
	duplicateAction{},
	truncateAction{},
	corruptAction{},
	mappedAddressAction{},
	closeAction{},
	ratelimitAction{},
	passAction{},
}

// actionNames lists the registered Action.Type values.
var actionNames = func() []string {
	names := make([]string, len(actionTypes))
	for i, t := range actionTypes {
		names[i] = t.spec().name
	}
	return names
}()

// describer is an action type with more to say in Action.String than its
// name (an optional ability, found by type assertion).
type describer interface {
	describe(a *Action) string
}

// String summarises a in a few words for listings: "error 403 Forbidden",
// "delay 2s", "ratelimit 10/s then drop", or the type for types with no
// parameters worth showing.
func (a Action) String() string {
	if t, ok := lookupAction(a.Type); ok {
		if d, ok := t.(describer); ok {
			return d.describe(&a)
		}
	}
	return a.Type
}

// lookupAction returns the action type named typ.
func lookupAction(typ string) (actionType, bool) {
	for _, t := range actionTypes {
		if t.spec().name == typ {
			return t, true
		}
	}
	return nil, false
}

// kindNames names the kinds a Verdict can carry, from the registry.
var kindNames = func() (names [NumKinds]string) {
	for _, t := range actionTypes {
		if sp := t.spec(); int(sp.kind) < NumKinds {
			names[sp.kind] = sp.name
		}
	}
	names[DelayOverflow] = "delay_overflow" // a delay no room was left for: not a rule's action type
	return names
}()

// String returns the kind as rules spell it ("error", "mapped_address"),
// and "delay_overflow" for DelayOverflow.
func (k ActionKind) String() string {
	if int(k) < NumKinds && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// maxMessage is the largest STUN message: a 20-byte header and the largest
// length field. Truncate lengths and corrupt counts beyond it mean nothing.
const maxMessage = 20 + 0xFFFF

// action checks a (at field, "action" or "action.then") against the
// rule's match m. nested is true for the then of a ratelimit.
func (v *ruleValidator) action(field string, a *Action, m *Match, nested bool) {
	if a.Type == "" {
		v.add(field+".type", "required (want one of %s)", strings.Join(actionNames, ", "))
		return
	}
	t, ok := lookupAction(a.Type)
	if !ok {
		v.add(field+".type", "unknown action type %q (want one of %s)", a.Type, strings.Join(actionNames, ", "))
		return
	}
	sp := t.spec()
	if nested && sp.kind == rateLimited {
		v.add(field+".type", "a ratelimit's then may not itself be a ratelimit")
		return
	}
	for _, p := range setParams(a) {
		if !slices.Contains(sp.params, p) {
			v.add(field+"."+p, "not a parameter of %s", a.Type)
		}
	}
	v.scope(sp, m)
	t.check(v, field, a, m)
}

// scope checks that the rule's match stays within where sp applies.
func (v *ruleValidator) scope(sp actionSpec, m *Match) {
	about := sp.about
	if about == "" {
		about = sp.name + " applies only to some messages"
	}
	if sp.dirs != 0 {
		dir := In
		if m.Direction == "out" {
			dir = Out
		}
		if sp.dirs&(1<<dir) == 0 {
			want := Out
			if sp.dirs&(1<<In) != 0 {
				want = In
			}
			v.add("match.direction", "%s: direction must be %s (set direction = %q)", about, want, want.String())
		}
	}
	if sp.transports != 0 {
		var want []string
		for _, t := range []Transport{UDP, TCP} {
			if sp.transports&(1<<t) != 0 {
				want = append(want, t.String())
			}
		}
		outside := len(m.Transports) == 0
		for _, s := range m.Transports {
			if !slices.Contains(want, s) {
				outside = true
			}
		}
		if outside {
			v.add("match.transports", "%s: set transports = [%q]", about, strings.Join(want, `", "`))
		}
	}
}

// bounded reports n at field unless lo <= n <= hi.
func (v *ruleValidator) bounded(field string, n, lo, hi int) {
	switch {
	case lo == 0 && n < 0:
		v.nonNegative(field, n)
	case n < lo || n > hi:
		v.add(field, "must be between %d and %d, got %d", lo, hi, n)
	}
}

// setParams lists the parameters set (non-zero) on a, by TOML/JSON name.
func setParams(a *Action) []string {
	var p []string
	add := func(set bool, name string) {
		if set {
			p = append(p, name)
		}
	}
	add(a.Code != 0, "code")
	add(a.Reason != "", "reason")
	add(a.Integrity != "", "integrity")
	add(a.Alternate != "", "alternate")
	add(a.Delay != 0, "delay")
	add(a.Jitter != 0, "jitter")
	add(a.Copies != 0, "copies")
	add(a.Length != 0, "length")
	add(a.Target != "", "target")
	add(a.Count != 0, "count")
	add(a.Address != "", "address")
	add(a.Rate != 0, "rate")
	add(a.Burst != 0, "burst")
	add(a.Then != nil, "then")
	return p
}

// compileAction parses a's parameters into a normalised copy. a has been
// validated; errors here are defensive.
func compileAction(a *Action) (compiledAction, error) {
	t, ok := lookupAction(a.Type)
	if !ok {
		return compiledAction{}, &FieldError{Field: "action.type", Msg: fmt.Sprintf("unknown action type %q", a.Type)}
	}
	cp := *a
	c := compiledAction{a: &cp, kind: t.spec().kind}
	if err := t.compile(&c); err != nil {
		return compiledAction{}, err
	}
	return c, nil
}
