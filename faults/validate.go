package faults

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The names a rule may use. The slices are never handed out: the exported
// functions return copies.
var (
	ruleMethods    = []string{"binding", "allocate", "refresh", "createpermission", "channelbind", "send", "data", "channeldata"}
	ruleClasses    = []string{"request", "indication", "success", "error"}
	ruleTransports = []string{"udp", "tcp"}
)

// Kinds returns the action types Action.Type accepts, in registry order.
// server's tests walk it to check that every type acts on every transport
// and direction it validates for.
func Kinds() []string { return slices.Clone(actionNames) }

// attributeTypes maps STUN attribute names (RFC 5389, 8489, 5766, 8656, 5245,
// 8445, 5780, 6062, 7635) to their numbers.
var attributeTypes = map[string]uint16{
	"MAPPED-ADDRESS":            0x0001,
	"RESPONSE-ADDRESS":          0x0002,
	"CHANGE-REQUEST":            0x0003,
	"SOURCE-ADDRESS":            0x0004,
	"CHANGED-ADDRESS":           0x0005,
	"USERNAME":                  0x0006,
	"PASSWORD":                  0x0007,
	"MESSAGE-INTEGRITY":         0x0008,
	"ERROR-CODE":                0x0009,
	"UNKNOWN-ATTRIBUTES":        0x000A,
	"REFLECTED-FROM":            0x000B,
	"CHANNEL-NUMBER":            0x000C,
	"LIFETIME":                  0x000D,
	"XOR-PEER-ADDRESS":          0x0012,
	"DATA":                      0x0013,
	"REALM":                     0x0014,
	"NONCE":                     0x0015,
	"XOR-RELAYED-ADDRESS":       0x0016,
	"REQUESTED-ADDRESS-FAMILY":  0x0017,
	"EVEN-PORT":                 0x0018,
	"REQUESTED-TRANSPORT":       0x0019,
	"DONT-FRAGMENT":             0x001A,
	"MESSAGE-INTEGRITY-SHA256":  0x001C,
	"PASSWORD-ALGORITHM":        0x001D,
	"USERHASH":                  0x001E,
	"XOR-MAPPED-ADDRESS":        0x0020,
	"RESERVATION-TOKEN":         0x0022,
	"PRIORITY":                  0x0024,
	"USE-CANDIDATE":             0x0025,
	"PADDING":                   0x0026,
	"RESPONSE-PORT":             0x0027,
	"CONNECTION-ID":             0x002A,
	"ADDITIONAL-ADDRESS-FAMILY": 0x8000,
	"ADDRESS-ERROR-CODE":        0x8001,
	"PASSWORD-ALGORITHMS":       0x8002,
	"ALTERNATE-DOMAIN":          0x8003,
	"ICMP":                      0x8004,
	"SOFTWARE":                  0x8022,
	"ALTERNATE-SERVER":          0x8023,
	"CACHE-TIMEOUT":             0x8027,
	"FINGERPRINT":               0x8028,
	"ICE-CONTROLLED":            0x8029,
	"ICE-CONTROLLING":           0x802A,
	"RESPONSE-ORIGIN":           0x802B,
	"OTHER-ADDRESS":             0x802C,
	"THIRD-PARTY-AUTHORIZATION": 0x802E,
	"MOBILITY-TICKET":           0x8030,
}

// parseAttributeType returns the number of the STUN attribute s names. s is
// a name from the STUN RFCs (USERNAME, XOR-MAPPED-ADDRESS, ...; case does not
// matter and '_' may stand for '-') or a number from 0 to 65535, decimal or
// 0x hex.
func parseAttributeType(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("empty attribute type")
	}
	if n, ok := attributeTypes[strings.ToUpper(strings.ReplaceAll(s, "_", "-"))]; ok {
		return n, nil
	}
	digits, base := s, 10
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		digits, base = s[2:], 16
	}
	if n, err := strconv.ParseUint(digits, base, 16); err == nil && digits[0] != '+' && digits[0] != '-' {
		return uint16(n), nil
	}
	return 0, fmt.Errorf("unknown attribute type %q (want a name such as USERNAME or XOR-MAPPED-ADDRESS, or a number 0-65535, decimal or 0x hex)", s)
}

// Validate checks r without compiling it: every name is known, every number
// is in range, every regular expression compiles, and the action can apply
// to the messages the rule matches (close needs TCP, mapped_address an
// outbound Binding success, error a request).
//
// It returns nil, or an error holding one *[FieldError] per problem (joined
// with errors.Join when there are several); [FieldErrors] lists them.
//
// Zero values that mean a default: Action.Copies and Action.Count of 0 mean
// 1; Every of 0 means every match; Times of 0 means unlimited. A truncate
// Length of 0 keeps nothing of the message.
func (r *Rule) Validate() error {
	var v ruleValidator
	v.check(r)
	return v.err()
}

// ruleValidator collects the FieldErrors of one rule, and the patterns it
// compiled to check them, by field, for compile to keep (building a
// pattern's automaton is the costly part of compiling a rule).
type ruleValidator struct {
	errs     []error
	patterns map[string]*Pattern
}

func (v *ruleValidator) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	}
	return errors.Join(v.errs...)
}

func (v *ruleValidator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *ruleValidator) nonNegative(field string, n int) {
	if n < 0 {
		v.add(field, "must not be negative, got %d", n)
	}
}

func (v *ruleValidator) regexp(field, expr string) {
	if expr == "" {
		return
	}
	p, err := CompilePattern(expr)
	if err != nil {
		v.add(field, "%v", err)
		return
	}
	if v.patterns == nil {
		v.patterns = make(map[string]*Pattern)
	}
	v.patterns[field] = p
}

// oneOf checks that each of values is in known.
func (v *ruleValidator) oneOf(field, what string, values, known []string) {
	for i, s := range values {
		if !slices.Contains(known, s) {
			v.add(fmt.Sprintf("%s[%d]", field, i), "unknown %s %q (want one of %s)", what, s, strings.Join(known, ", "))
		}
	}
}

func (v *ruleValidator) check(r *Rule) {
	v.utf8(r)
	if r.Probability != nil {
		if p := *r.Probability; math.IsNaN(p) || p < 0 || p > 1 {
			v.add("probability", "must be between 0 and 1, got %v", p)
		}
	}
	v.nonNegative("times", r.Times)
	v.nonNegative("after", r.After)
	v.nonNegative("every", r.Every)
	if r.For < 0 {
		v.add("for", "must not be negative, got %v", r.For)
	}
	switch r.MachineKey {
	case "", MachineKeyClient, MachineKeyUsername:
	default:
		v.add("machine_key", "unknown key %q (want %q, %q, or none for one state)", r.MachineKey, MachineKeyClient, MachineKeyUsername)
	}
	if r.Machine == "" {
		if r.MachineKey != "" {
			v.add("machine_key", "only with machine (name the state machine to key)")
		}
		if r.RequiresState != "" {
			v.add("requires_state", "only with machine (name the state machine this state belongs to)")
		}
		if r.SetsState != "" {
			v.add("sets_state", "only with machine (name the state machine this state belongs to)")
		}
	}
	v.match(&r.Match)
	v.leg(r)
	v.action("action", &r.Action, &r.Match, false)
}

func (v *ruleValidator) match(m *Match) {
	v.oneOf("match.methods", "method", m.Methods, ruleMethods)
	v.oneOf("match.classes", "class", m.Classes, ruleClasses)
	v.oneOf("match.transports", "transport", m.Transports, ruleTransports)
	switch m.Direction {
	case "", "in", "out":
	default:
		v.add("match.direction", "unknown direction %q (want in or out)", m.Direction)
	}
	for i, s := range m.Sources {
		if _, err := netip.ParsePrefix(s); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		v.add(fmt.Sprintf("match.sources[%d]", i), "invalid CIDR %q (want a prefix such as \"10.0.0.0/8\" or a single IP)", s)
	}
	v.regexp("match.username", m.Username)
	v.nonNegative("match.min_size", m.MinSize)
	v.nonNegative("match.max_size", m.MaxSize)
	if m.MinSize > 0 && m.MaxSize > 0 && m.MinSize > m.MaxSize {
		v.add("match.min_size", "must not exceed max_size (%d), got %d", m.MaxSize, m.MinSize)
	}
	v.nonNegative("match.transmission", m.Transmission)
	v.nonNegative("match.min_user_allocations", m.MinUserAllocations)
	v.nonNegative("match.min_allocations", m.MinAllocations)
	regexes := 0
	for i := range m.Attributes {
		if m.Attributes[i].Regex != "" {
			regexes++
		}
	}
	switch {
	case len(m.Attributes) > MaxAttributeMatches:
		v.add("match.attributes", "%d conditions, at most %d (each may scan its attribute: split the rule)", len(m.Attributes), MaxAttributeMatches)
	case regexes > MaxAttributeRegexes:
		v.add("match.attributes", "%d with a regex, at most %d (each scans its attribute on every message: use contains, or split the rule)", regexes, MaxAttributeRegexes)
	default:
		for i := range m.Attributes {
			v.attribute(fmt.Sprintf("match.attributes[%d]", i), &m.Attributes[i])
		}
	}
	if w := m.Webhook; w != nil {
		if w.Name != "" && !ValidName(w.Name) {
			v.add("match.webhook.name", "invalid webhook name %q (want letters, digits, '_' and '-')", w.Name)
		}
		v.nonNegative("match.webhook.min_inflight", w.MinInflight)
		v.nonNegative("match.webhook.min_pending", w.MinPending)
		v.regexp("match.webhook.body", w.Body)
		v.nonNegative("match.webhook.min_body_bytes", w.MinBodyBytes)
		v.nonNegative("match.webhook.min_header_bytes", w.MinHeaderBytes)
		if w.Window < 0 {
			v.add("match.webhook.window", "must not be negative, got %v", w.Window)
		}
	}
}

func (v *ruleValidator) attribute(field string, a *AttributeMatch) {
	if a.Type == "" {
		v.add(field+".type", "required (an attribute name such as USERNAME, or a number)")
	} else if _, err := parseAttributeType(a.Type); err != nil {
		v.add(field+".type", "%v", err)
	}
	v.regexp(field+".regex", a.Regex)
	v.nonNegative(field+".min_len", a.MinLen)
	v.nonNegative(field+".max_len", a.MaxLen)
	if a.MinLen > 0 && a.MaxLen > 0 && a.MinLen > a.MaxLen {
		v.add(field+".min_len", "must not exceed max_len (%d), got %d", a.MaxLen, a.MinLen)
	}
	if a.Present != nil && !*a.Present && (a.Contains != "" || a.Regex != "" || a.MinLen > 0 || a.MaxLen > 0) {
		v.add(field+".present", "false contradicts contains, regex, min_len and max_len (they require the attribute)")
	}
}

// ValidName reports whether s can name a webhook or a scenario: one or more
// ASCII letters, digits, '_' or '-'. Names end up in URLs (/webhook/NAME) and
// control messages, so nothing else is allowed.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
