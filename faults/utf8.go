package faults

import (
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// utf8 checks that the names in r are valid UTF-8: its id, labels (keys and
// values), machine and states. They are echoed in JSON (the journal, events,
// replies), which would turn bad bytes into U+FFFD, and a rule could then
// not be named by what a client sees.
func (v *ruleValidator) utf8(r *Rule) {
	text := func(field, s string) {
		if !utf8.ValidString(s) {
			v.add(field, "must be valid UTF-8, got %s", strconv.QuoteToASCII(s))
		}
	}
	text("id", r.ID)
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		if !utf8.ValidString(k) {
			v.add("labels", "key %s must be valid UTF-8", strconv.QuoteToASCII(k))
			continue
		}
		text("labels."+k, r.Labels[k])
	}
	text("machine", r.Machine)
	text("requires_state", r.RequiresState)
	text("sets_state", r.SetsState)
}
