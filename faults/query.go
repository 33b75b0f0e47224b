package faults

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Query selects journal entries and events. Every field given must hold; the
// zero Query selects everything. Validate reports values that can never
// select anything.
type Query struct {
	// Rule is a rule ID.
	Rule string `json:"rule,omitempty"`
	// Method, Class, Transport and Direction are compared with the Entry's.
	Method    string `json:"method,omitempty"`
	Class     string `json:"class,omitempty"`
	Transport string `json:"transport,omitempty"`
	Direction string `json:"direction,omitempty"`
	// Client is an address with port ("127.0.0.1:5000": that socket), an
	// address ("127.0.0.1": any port) or a prefix ("10.0.0.0/8"). IPv4-mapped
	// IPv6 addresses count as IPv4. A value that is none of these selects
	// nothing.
	Client string `json:"client,omitempty"`
	// Labels must all be among the rule's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// SinceSeq selects entries with a greater Seq. Subscriptions ignore it.
	SinceSeq uint64 `json:"since_seq,omitempty"`
	// Limit caps how many entries Journal.Query returns (0 = no cap): the
	// oldest matching ones, so a caller can page with SinceSeq. Count,
	// Verify and subscriptions ignore it.
	Limit int `json:"limit,omitempty"`
}

// Validate reports the values of q that could never select anything (a
// typo'd method, an unparsable client) and a negative Limit, as
// *FieldError values whose Field is the query's JSON name ("method",
// "client"), joined with errors.Join when there are several.
func (q Query) Validate() error {
	var errs []error
	oneOf := func(field, v string, allowed []string) {
		if v != "" && !slices.Contains(allowed, v) {
			errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf("unknown value %q (want one of %s)", v, strings.Join(allowed, ", "))})
		}
	}
	oneOf("method", q.Method, ruleMethods)
	oneOf("class", q.Class, ruleClasses)
	oneOf("transport", q.Transport, ruleTransports)
	oneOf("direction", q.Direction, []string{"in", "out"})
	if q.Client != "" {
		if _, ok := parseClient(q.Client); !ok {
			errs = append(errs, &FieldError{Field: "client", Msg: fmt.Sprintf("%q is not an address, address:port or CIDR prefix", q.Client)})
		}
	}
	if q.Limit < 0 {
		errs = append(errs, &FieldError{Field: "limit", Msg: "must not be negative"})
	}
	return errors.Join(errs...)
}

// clientFilter is Query.Client parsed: an address and port, or a prefix.
type clientFilter struct {
	addr   netip.AddrPort // valid: this socket
	prefix netip.Prefix   // valid: any address in it, any port
}

func parseClient(s string) (clientFilter, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return clientFilter{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, true
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return clientFilter{prefix: p.Masked()}, err == nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return clientFilter{prefix: netip.PrefixFrom(a, a.BitLen())}, true
	}
	return clientFilter{}, false
}

func (f *clientFilter) match(ap netip.AddrPort) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if f.addr.IsValid() {
		return ap == f.addr
	}
	return f.prefix.Contains(ap.Addr())
}

// queryFilter is a Query prepared for matching many entries: its client
// parsed once, its label keys sorted.
type queryFilter struct {
	q         Query
	hasClient bool
	client    clientFilter
	bad       bool     // Client did not parse: nothing matches
	labelKeys []string // q.Labels' keys, sorted
}

func newQueryFilter(q Query) queryFilter {
	f := queryFilter{q: q}
	if q.Client != "" {
		f.hasClient = true
		f.client, f.bad = parseClient(q.Client)
		f.bad = !f.bad
	}
	if len(q.Labels) > 0 {
		f.labelKeys = slices.Sorted(maps.Keys(q.Labels))
	}
	return f
}

// match reports whether f selects e.
func (f *queryFilter) match(e *Entry) bool {
	_, ok := f.check(e, nil, false)
	return ok
}

// failed returns the names of f's fields that e fails ("method",
// "labels.test", "since_seq"), in a fixed order; nil when f selects e.
func (f *queryFilter) failed(e *Entry) []string {
	names, _ := f.check(e, nil, true)
	return names
}

// check is the one definition of what a Query selects. It reports whether
// e passes every field; with all, it goes on past the first failure and
// appends the name of each failed field to names.
func (f *queryFilter) check(e *Entry, names []string, all bool) ([]string, bool) {
	ok := true
	fail := func(name string) bool {
		ok = false
		if all {
			names = append(names, name)
		}
		return all
	}
	q := &f.q
	if q.Rule != "" && q.Rule != e.Rule && !fail("rule") {
		return names, false
	}
	if q.Method != "" && q.Method != e.Method && !fail("method") {
		return names, false
	}
	if q.Class != "" && q.Class != e.Class && !fail("class") {
		return names, false
	}
	if q.Transport != "" && q.Transport != e.Transport && !fail("transport") {
		return names, false
	}
	if q.Direction != "" && q.Direction != e.Direction && !fail("direction") {
		return names, false
	}
	if f.hasClient && (f.bad || !f.client.match(e.Client)) && !fail("client") {
		return names, false
	}
	for _, k := range f.labelKeys {
		if v, has := e.Labels[k]; (!has || v != q.Labels[k]) && !fail("labels."+k) {
			return names, false
		}
	}
	if q.SinceSeq > 0 && e.Seq <= q.SinceSeq && !fail("since_seq") {
		return names, false
	}
	return names, ok
}

// hasLabels reports whether have holds every pair in want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// MaxNearMisses is how many near misses [Journal.Verify] returns at most.
const MaxNearMisses = 5

// NearMiss is a journal entry that a query almost selected: Failed lists
// the query fields it failed ("method", "labels.test", "since_seq", ...).
type NearMiss struct {
	Entry  Entry    `json:"entry"`
	Failed []string `json:"failed"`
}

// Verification is the result of [Journal.Verify]. Match is Expected ==
// Actual. On a mismatch NearMisses holds up to [MaxNearMisses] entries the
// query did not select, those failing the fewest query fields first (latest
// first among equals).
type Verification struct {
	Match      bool       `json:"match"`
	Expected   int        `json:"expected"`
	Actual     int        `json:"actual"`
	NearMisses []NearMiss `json:"near_misses,omitempty"`
}
