package config

import "net/netip"

// RelayAddresses returns the relay addresses by family: the address relays
// are bound to, and the one XOR-RELAYED-ADDRESS reports, for IPv4 and IPv6.
// A family with no relay address has a zero bind address; when address and
// address6 are the same IPv6 address, it is one relay address. r must be
// valid.
func (r Relay) RelayAddresses() (v4, v6 RelayAddress) {
	for _, p := range [][2]string{{r.Address, r.ExternalAddress}, {r.Address6, r.ExternalAddress6}} {
		bind, err := netip.ParseAddr(p[0])
		if err != nil {
			continue
		}
		a := RelayAddress{Bind: bind.Unmap(), External: bind.Unmap()}
		if ext, err := netip.ParseAddr(p[1]); err == nil {
			a.External = ext.Unmap()
		}
		switch {
		case a.Bind.Is4() && !v4.Bind.IsValid():
			v4 = a
		case !a.Bind.Is4() && !v6.Bind.IsValid():
			v6 = a // address6 equal to an IPv6 address is the same relay
		}
	}
	return v4, v6
}

// RelayAddress is where relays of one family are bound, and what clients
// are told.
type RelayAddress struct {
	Bind, External netip.Addr
}

// relayAddresses checks address6 and the external addresses: IP literals,
// address6 of the other family than address, each external address of its
// bind address's family.
func (v *validator) relayAddresses(r *Relay) {
	addr, _ := netip.ParseAddr(r.Address)
	check := func(field, s string) (netip.Addr, bool) {
		if s == "" {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			v.add(field, "invalid IP address %q (want an IP literal or \"\")", s)
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	a6, ok6 := check("relay.address6", r.Address6)
	if ok6 && addr.IsValid() && a6.Is4() == addr.Unmap().Is4() && a6 != addr.Unmap() {
		v.add("relay.address6", "%s is of the same family as relay.address (%s): address6 is the other family's relay address (set it to \"\" for none)", r.Address6, r.Address)
	}
	if ext, ok := check("relay.external_address", r.ExternalAddress); ok && addr.IsValid() && ext.Is4() != addr.Unmap().Is4() {
		v.add("relay.external_address", "%s is not of relay.address's family (%s)", r.ExternalAddress, r.Address)
	}
	ext6, ok := check("relay.external_address6", r.ExternalAddress6)
	switch {
	case ok && !ok6:
		v.add("relay.external_address6", "is set but relay.address6 is not")
	case ok && ext6.Is4() != a6.Is4():
		v.add("relay.external_address6", "%s is not of relay.address6's family (%s)", r.ExternalAddress6, r.Address6)
	}
}
