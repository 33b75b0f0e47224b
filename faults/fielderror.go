package faults

// FieldError is one problem with one field of a [Rule]. Field is the field's
// path relative to the rule, written the way the config file and the control
// socket spell it: "match.methods[0]", "action.then.code". Msg says what is
// wrong and what was expected.
//
// Error omits any package prefix on purpose: callers put the message in their
// own context (config prefixes "rules[2]." and a file and line, the control
// socket sends Field and the message as they are).
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: msg".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// FieldErrors returns every *FieldError in err, in order: err itself, or the
// errors joined in it with errors.Join (as [Rule.Validate] returns them),
// looking through wrapping. It returns nil when err is nil or holds none.
func FieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	switch u := err.(type) {
	case *FieldError:
		return []*FieldError{u}
	case interface{ Unwrap() []error }:
		var out []*FieldError
		for _, e := range u.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return FieldErrors(u.Unwrap())
	}
	return nil
}
