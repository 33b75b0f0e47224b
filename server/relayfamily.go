package server

import (
	"errors"
	"net"
	"strings"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/faults"
)

// errNoRelayFamily is why a relay of a family with no relay address is not
// made. The relay guard answers such an Allocate with 440 before pion asks.
var errNoRelayFamily = errors.New("server: no relay address of the requested family ([relay].address, address6)")

// familyGenerator hands pion relays of the family each allocation asks for
// (RFC 6156: REQUESTED-ADDRESS-FAMILY, or the listener's family when the
// client names none): IPv4 relays from v4, IPv6 from v6. A nil one has no
// relay address.
type familyGenerator struct {
	v4, v6 turn.RelayAddressGenerator
}

func (f familyGenerator) pick(network string) (turn.RelayAddressGenerator, error) {
	g := f.v4
	if strings.HasSuffix(network, "6") {
		g = f.v6
	}
	if g == nil {
		return nil, errNoRelayFamily
	}
	return g, nil
}

// Validate validates each family's generator.
func (f familyGenerator) Validate() error {
	var errs []error
	for _, g := range []turn.RelayAddressGenerator{f.v4, f.v6} {
		if g != nil {
			errs = append(errs, g.Validate())
		}
	}
	return errors.Join(errs...)
}

// AllocatePacketConn makes a UDP relay of the requested family.
func (f familyGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	g, err := f.pick(c.Network)
	if err != nil {
		return nil, nil, err
	}
	return g.AllocatePacketConn(c)
}

// AllocateListener makes a TCP relay listener (RFC 6062) of the requested
// family.
func (f familyGenerator) AllocateListener(c turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	g, err := f.pick(c.Network)
	if err != nil {
		return nil, nil, err
	}
	return g.AllocateListener(c)
}

// AllocateConn dials a TCP relay connection (RFC 6062 Connect) of the
// requested family.
func (f familyGenerator) AllocateConn(c turn.AllocateConnConfig) (net.Conn, error) {
	g, err := f.pick(c.Network)
	if err != nil {
		return nil, err
	}
	return g.AllocateConn(c)
}

// guardFamilyNotSupported answers an Allocate for a family that has no
// relay address (RFC 6156), signed like any injected error.
var guardFamilyNotSupported = &faults.Action{Type: "error", Code: 440, Reason: "Address Family not Supported", Integrity: "auto"}

// attrRequestedAddressFamily is REQUESTED-ADDRESS-FAMILY (RFC 6156); its
// first byte is 0x01 for IPv4, 0x02 for IPv6.
const attrRequestedAddressFamily = 0x0017

// wantsTCP reports whether Allocate p asks for a TCP relay (RFC 6062).
func (g *relayGuard) wantsTCP(p *faults.Packet) bool {
	v, ok := p.Attr(attrRequestedTranport)
	return ok && len(v) >= 1 && v[0] == protoTCP
}

// refuseFamily returns 440 for an authenticated Allocate whose family has
// no relay address: the one REQUESTED-ADDRESS-FAMILY names, or, as pion
// does without it, the client's own. Other families pion answers itself.
func (g *relayGuard) refuseFamily(p *faults.Packet) *faults.Action {
	if g.relay4 && g.relay6 {
		return nil
	}
	v6 := !p.Client.Addr().Unmap().Is4()
	if v, ok := p.Attr(attrRequestedAddressFamily); ok && len(v) >= 1 {
		switch v[0] {
		case 0x01:
			v6 = false
		case 0x02:
			v6 = true
		default:
			return nil // pion answers an unknown family with 440 itself
		}
	}
	if (v6 && g.relay6) || (!v6 && g.relay4) || !g.authentic(p) {
		return nil
	}
	g.log.Info("allocation refused: no relay address of the family", "client", p.Client.String(), "ipv6", v6)
	return guardFamilyNotSupported
}
