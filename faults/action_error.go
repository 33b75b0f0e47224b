package faults

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Error answers a request with a STUN error response instead of passing it
// (Action.Code, Reason, Integrity, Alternate).
const Error ActionKind = 1

// errorAction answers an inbound request with a STUN error response:
// code 300-699, reason, integrity auto | none | bad, and for a 300 the
// ALTERNATE-SERVER address.
type errorAction struct{}

var errorIntegrity = []string{"auto", "none", "bad"}

var errorSpec = actionSpec{
	name:   "error",
	kind:   Error,
	params: []string{"code", "reason", "integrity", "alternate"},
	dirs:   1 << In,
	about:  "an error action answers an inbound request",
}

func (errorAction) spec() actionSpec { return errorSpec }

func (errorAction) check(v *ruleValidator, field string, a *Action, m *Match) {
	if a.Code < 300 || a.Code > 699 {
		v.add(field+".code", "must be between 300 and 699, got %d", a.Code)
	}
	if a.Integrity != "" && !slices.Contains(errorIntegrity, a.Integrity) {
		v.add(field+".integrity", "unknown integrity %q (want auto, none or bad)", a.Integrity)
	}
	if len(a.Reason) > maxReason {
		v.add(field+".reason", "must be at most %d bytes, got %d", maxReason, len(a.Reason))
	}
	switch {
	case a.Code == 300 && a.Alternate == "":
		v.add(field+".alternate", "required for code 300 (the ALTERNATE-SERVER address, ip:port)")
	case a.Code != 300 && a.Alternate != "":
		v.add(field+".alternate", "only for code 300, got code %d", a.Code)
	case a.Alternate != "":
		if _, err := netip.ParseAddrPort(a.Alternate); err != nil {
			v.add(field+".alternate", "invalid address %q (want ip:port such as \"127.0.0.1:3479\")", a.Alternate)
		}
	}
	if len(m.Classes) > 0 && !slices.Contains(m.Classes, "request") {
		v.add("match.classes", "an error action answers requests, but the classes %v include no request", m.Classes)
	}
	if len(m.Methods) > 0 && !slices.ContainsFunc(m.Methods, func(s string) bool {
		return s != "send" && s != "data" && s != "channeldata"
	}) {
		v.add("match.methods", "an error action answers requests, but send, data and channeldata are never requests")
	}
}

func (errorAction) describe(a *Action) string {
	return strings.TrimSpace("error " + strconv.Itoa(a.Code) + " " + a.Reason)
}

// maxReason is the longest reason phrase: RFC 8489 §14.8 allows 763 bytes.
const maxReason = 763

func (errorAction) compile(c *compiledAction) error {
	if c.a.Integrity == "" {
		c.a.Integrity = "auto"
	}
	if c.a.Alternate != "" {
		ap, err := netip.ParseAddrPort(c.a.Alternate)
		if err != nil {
			return &FieldError{Field: "action.alternate", Msg: fmt.Sprint(err)}
		}
		c.addr = ap
	}
	return nil
}
