package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
)

// newRelayGenerator returns pion's port-range generator for [relay]: relayed
// addresses are bound on relay.address within [min_port, max_port].
func newRelayGenerator(r config.Relay) (turn.RelayAddressGenerator, error) {
	ip := net.ParseIP(r.Address)
	if ip == nil {
		return nil, fmt.Errorf("server: relay.address %q is not an IP address", r.Address)
	}
	return &turn.RelayAddressGeneratorPortRange{
		RelayAddress: ip,
		Address:      r.Address,
		MinPort:      uint16(r.MinPort), //nolint:gosec // validated to 1-65535 by config
		MaxPort:      uint16(r.MaxPort), //nolint:gosec // validated to 1-65535 by config
		MaxRetries:   64,
	}, nil
}

// newPermissionHandler refuses permissions to peers outside allow_peers, so
// stunfault is never an open relay. pion answers a refused CreatePermission
// with 403 Forbidden and a refused ChannelBind with 401 Unauthorized; a Send
// indication to a peer without a permission is dropped silently.
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
