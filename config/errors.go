package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a configuration. File and Line locate it when it
// was read from TOML (Line is 0 when unknown, File empty for a Config built
// in Go); Field is the key path, such as "relay.min_port" or
// "rules[1].match.methods[0]" (empty for a syntax error).
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error formats e as "FILE:LINE: FIELD: MSG", leaving out what is unknown;
// with neither file nor line it starts with "config: ".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	default:
		b.WriteString("config: ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem [Parse], [Load] or [Config.Validate] found, in file
// order. Its Error method puts one per line. errors.As finds an Errors, and
// (through Unwrap) the first *Error in it.
type Errors []*Error

// Error returns each error's message, one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors in es, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
