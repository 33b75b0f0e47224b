package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
)

// errOwnAddress is why a TCP relay connection to one of stunfault's own
// addresses is not dialled (pion then answers Connect with 447; the guard
// answers 403 before it gets that far).
var errOwnAddress = errors.New("server: peer is one of stunfault's own listening addresses")

// newRelayGenerator returns the relay generator for [relay]: relayed
// addresses of the family the client asks for are bound on relay.address or
// relay.address6 within [min_port, max_port], and reported as the external
// address when one is set. The relays it makes never send to an address of
// g's own set (see relayGuard).
//
// Each relay socket is also wrapped in a peerConn (peer.go) when ic is not
// nil, so peer-leg rules see the datagrams between it and its peers.
func newRelayGenerator(r config.Relay, g *relayGuard, ic *interceptor) (turn.RelayAddressGenerator, error) {
	v4, v6 := r.RelayAddresses()
	if !v4.Bind.IsValid() && !v6.Bind.IsValid() {
		return nil, fmt.Errorf("server: relay.address %q is not an IP address", r.Address)
	}
	fg := familyGenerator{}
	for _, a := range []config.RelayAddress{v4, v6} {
		if !a.Bind.IsValid() {
			continue
		}
		gen := guardedGenerator{
			RelayAddressGenerator: &turn.RelayAddressGeneratorPortRange{
				RelayAddress: net.IP(a.External.AsSlice()),
				Address:      a.Bind.String(),
				MinPort:      uint16(r.MinPort), //nolint:gosec // validated to 1-65535 by config
				MaxPort:      uint16(r.MaxPort), //nolint:gosec // validated to 1-65535 by config
				MaxRetries:   64,
			},
			own: g.own.Load,
			ic:  ic,
		}
		if a.Bind.Is4() {
			fg.v4 = gen
		} else {
			fg.v6 = gen
		}
	}
	return fg, nil
}

// guardedGenerator wraps the relays of a generator so that they never reach
// stunfault's own addresses.
type guardedGenerator struct {
	turn.RelayAddressGenerator
	own func() *ownAddrs
	ic  *interceptor // nil: no peer leg
}

func (g guardedGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.RelayAddressGenerator.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, err
	}
	var relay net.PacketConn = &guardedRelayConn{PacketConn: pc, own: g.own}
	if g.ic != nil {
		relay = newPeerConn(relay, g.ic, addrPortOf(pc.LocalAddr()), addrPortOf(addr))
	}
	return relay, addr, nil
}

func (g guardedGenerator) AllocateConn(c turn.AllocateConnConfig) (net.Conn, error) {
	if ta, ok := c.RemoteAddr.(*net.TCPAddr); ok {
		if own := g.own(); own != nil && own.contains(ta.AddrPort()) {
			return nil, errOwnAddress
		}
	}
	return g.RelayAddressGenerator.AllocateConn(c)
}

// newPermissionHandler refuses permissions to peers outside allow_peers, so
// stunfault is never an open relay. pion answers a refused CreatePermission
// or Connect with 403 Forbidden and a refused ChannelBind with 401
// Unauthorized; a Send indication to a peer without a permission is dropped
// silently. (stunfault's own addresses get 403 from relayGuard before pion
// looks.)
func newPermissionHandler(allow []string, log *slog.Logger) (turn.PermissionHandler, error) {
	prefixes := make([]netip.Prefix, 0, len(allow))
	for _, s := range allow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("server: relay.allow_peers: %w", err)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return func(client net.Addr, peer net.IP) bool {
		ip, ok := netip.AddrFromSlice(peer)
		if ok {
			ip = ip.Unmap()
			for _, p := range prefixes {
				if p.Contains(ip) {
					return true
				}
			}
		}
		log.Info("peer refused: outside relay.allow_peers", "client", client.String(), "peer", peer.String())
		return false
	}, nil
}
