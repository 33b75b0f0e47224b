package faults

import (
	"fmt"
	"net/netip"
)

// MappedAddress rewrites the XOR-MAPPED-ADDRESS of a Binding success to
// Verdict.Address.
const MappedAddress ActionKind = 7

// mappedAddressAction rewrites the XOR-MAPPED-ADDRESS of an outbound
// Binding success response to address, so the client learns a wrong
// server-reflexive candidate.
type mappedAddressAction struct{}

var mappedAddressSpec = actionSpec{
	name:   "mapped_address",
	kind:   MappedAddress,
	params: []string{"address"},
	dirs:   1 << Out,
	about:  "mapped_address rewrites outbound Binding success responses",
}

func (mappedAddressAction) spec() actionSpec { return mappedAddressSpec }

func (mappedAddressAction) check(v *ruleValidator, field string, a *Action, m *Match) {
	if a.Address == "" {
		v.add(field+".address", "required (the ip:port to put in XOR-MAPPED-ADDRESS)")
	} else if _, err := netip.ParseAddrPort(a.Address); err != nil {
		v.add(field+".address", "invalid address %q (want ip:port such as \"203.0.113.7:40000\")", a.Address)
	}
	for i, s := range m.Methods {
		if s != "binding" {
			v.add(fmt.Sprintf("match.methods[%d]", i), "mapped_address applies only to binding, got %q", s)
		}
	}
	for i, s := range m.Classes {
		if s != "success" {
			v.add(fmt.Sprintf("match.classes[%d]", i), "mapped_address applies only to success responses, got %q", s)
		}
	}
}

func (mappedAddressAction) compile(c *compiledAction) error {
	ap, err := netip.ParseAddrPort(c.a.Address)
	if err != nil {
		return &FieldError{Field: "action.address", Msg: err.Error()}
	}
	c.addr = ap
	return nil
}
