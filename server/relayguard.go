package server

import (
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// TURN methods and attributes of RFC 6062 the guard looks at, beyond those
// faults names.
const (
	methodConnect         faults.Method = 0x000a
	methodConnectionBind  faults.Method = 0x000b
	attrRequestedTranport               = 0x0019
	protoTCP                            = 6 // REQUESTED-TRANSPORT protocol number
)

// The answers of the guard, signed like any injected error (integrity auto).
var (
	guardUnsupportedTransport = &faults.Action{Type: "error", Code: 442, Reason: "Unsupported Transport Protocol", Integrity: "auto"}
	guardForbidden            = &faults.Action{Type: "error", Code: 403, Reason: "Forbidden", Integrity: "auto"}
	guardBadRequest           = &faults.Action{Type: "error", Code: 400, Reason: "Bad Request", Integrity: "auto"}
)

// relayGuard keeps TURN relays from reaching behind stunfault. In front of
// pion (and of the rule engine), it answers an authenticated
//
//   - Allocate asking for a TCP relay (RFC 6062) with 442 Unsupported
//     Transport Protocol unless [relay].tcp_allocations is on, and with 400
//     Bad Request when it is on but the request came over UDP (RFC 6062
//     §5.1: TCP relays need a TCP or TLS control connection);
//   - Allocate asking for a relay of a family with no relay address
//     ([relay].address, address6) with 440 Address Family not Supported;
//   - CreatePermission, ChannelBind or Connect whose XOR-PEER-ADDRESS is
//     one of stunfault's own listening addresses (a STUN/TURN listener or
//     the HTTP side) with 403 Forbidden, whatever allow_peers says.
//
// pion's permissions are per peer IP, not per port, so the relay sockets
// themselves (see relay.go) also refuse to send to an own address: a Send
// indication or ChannelData that would reach one is dropped.
//
// Requests that are not signed, or whose MESSAGE-INTEGRITY does not check
// out, go on to pion, which challenges them with 401 as it would anyway:
// the guard never tells an unauthenticated client more than pion does.
type relayGuard struct {
	tcpAllocations bool
	relay4, relay6 bool // a relay address of each family is configured
	auth           *authenticator
	realm          string
	log            *slog.Logger
	own            atomic.Pointer[ownAddrs] // set by Start before pion serves
}

func newRelayGuard(cfg config.Config, auth *authenticator, log *slog.Logger) *relayGuard {
	v4, v6 := cfg.Relay.RelayAddresses()
	return &relayGuard{
		tcpAllocations: cfg.Relay.TCPAllocations,
		relay4:         v4.Bind.IsValid(),
		relay6:         v6.Bind.IsValid(),
		auth:           auth, realm: cfg.Server.Realm, log: log,
	}
}

// setOwn records the addresses Start bound: every STUN/TURN listener and
// the HTTP side. It is called before pion serves.
func (g *relayGuard) setOwn(socks *boundSockets, http net.Listener) {
	addrs := []netip.AddrPort{addrPort(http.Addr())}
	for _, l := range socks.addrs {
		addrs = append(addrs, l.Addr)
	}
	g.own.Store(newOwnAddrs(addrs, localAddrs()))
}

// refuse returns the error to answer p with, or nil to let it through. The
// common case (anything but an Allocate, CreatePermission, ChannelBind or
// Connect request) costs a look at the header.
func (g *relayGuard) refuse(p *faults.Packet) *faults.Action {
	if g == nil || p.Dir != faults.In || !p.IsSTUN() || p.Class() != faults.ClassRequest {
		return nil
	}
	switch p.Method() {
	case faults.MethodAllocate:
		tcp := g.wantsTCP(p)
		if !tcp || g.tcpAllocations && p.Transport != faults.UDP {
			return g.refuseFamily(p)
		}
		if !g.authentic(p) {
			return nil
		}
		if g.tcpAllocations {
			// RFC 6062 §5.1: a TCP allocation needs a TCP (or TLS)
			// control connection; pion does not check.
			g.log.Info("TCP allocation refused: asked over UDP", "client", p.Client.String())
			return guardBadRequest
		}
		g.log.Info("TCP allocation refused: [relay].tcp_allocations is off", "client", p.Client.String())
		return guardUnsupportedTransport
	case faults.MethodCreatePermission, faults.MethodChannelBind, methodConnect:
		own := g.own.Load()
		if own == nil || !p.HasIntegrity() {
			return nil
		}
		m := &stun.Message{Raw: append([]byte(nil), p.Data...)}
		if m.Decode() != nil {
			return nil
		}
		var peer netip.AddrPort
		hit := false
		_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
			var a stun.XORMappedAddress
			if a.GetFromAs(m, stun.AttrXORPeerAddress) != nil {
				return nil
			}
			ip, ok := netip.AddrFromSlice(a.IP)
			if ap := netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)); ok && own.contains(ap) { //nolint:gosec // a port fits
				peer, hit = ap, true
			}
			return nil
		})
		if !hit || !g.verify(m) {
			return nil
		}
		g.log.Info("relay to stunfault's own address refused", "method", p.Method().String(), "client", p.Client.String(), "peer", peer.String())
		return guardForbidden
	}
	return nil
}

// authentic reports whether p is signed with the key of a known, unexpired
// credential.
func (g *relayGuard) authentic(p *faults.Packet) bool {
	if !p.HasIntegrity() {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), p.Data...)}
	return m.Decode() == nil && g.verify(m)
}

// verify checks m's MESSAGE-INTEGRITY with the key pion would use.
func (g *relayGuard) verify(m *stun.Message) bool {
	var user stun.Username
	if user.GetFrom(m) != nil {
		return false
	}
	_, key, ok := g.auth.handle(&turn.RequestAttributes{Username: user.String(), Realm: g.realm})
	return ok && stun.MessageIntegrity(key).Check(m) == nil
}

// ownAddrs is the set of addresses stunfault listens on. A listener on an
// unspecified address (0.0.0.0, ::) stands for every local address on its
// port: loopback, the interfaces' addresses, and the unspecified address
// itself (connecting to 0.0.0.0 reaches the local host).
type ownAddrs struct {
	exact    map[netip.AddrPort]bool
	anyPorts map[uint16]bool
	local    map[netip.Addr]bool
}

// newOwnAddrs returns the set for the given listening addresses; local are
// the host's interface addresses (see localAddrs).
func newOwnAddrs(listening []netip.AddrPort, local []netip.Addr) *ownAddrs {
	o := &ownAddrs{exact: map[netip.AddrPort]bool{}, anyPorts: map[uint16]bool{}, local: map[netip.Addr]bool{}}
	for _, a := range listening {
		ip := a.Addr().Unmap()
		if ip.IsUnspecified() {
			o.anyPorts[a.Port()] = true
			continue
		}
		o.exact[netip.AddrPortFrom(ip, a.Port())] = true
	}
	for _, ip := range local {
		o.local[ip.Unmap()] = true
	}
	return o
}

// contains reports whether a relay sending to ap would reach stunfault.
func (o *ownAddrs) contains(ap netip.AddrPort) bool {
	ip, port := ap.Addr().Unmap(), ap.Port()
	if ip.IsUnspecified() {
		// The kernel delivers to the local host: 127.0.0.1 or ::1.
		return o.anyPorts[port] ||
			o.exact[netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)] ||
			o.exact[netip.AddrPortFrom(netip.IPv6Loopback(), port)]
	}
	if o.exact[netip.AddrPortFrom(ip, port)] {
		return true
	}
	return o.anyPorts[port] && (ip.IsLoopback() || o.local[ip])
}

// localAddrs returns the host's interface addresses, read once at Start: a
// listener on 0.0.0.0 is reachable on each of them. An error leaves only
// loopback, which contains covers by itself.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// guardedRelayConn is a relay socket (one allocation's UDP relay) that
// never sends to one of stunfault's own addresses: pion grants permissions
// per IP, so a permission for 127.0.0.1 would otherwise let a Send
// indication or ChannelData reach every port of it. Such a datagram is
// dropped (reported as sent, as UDP would).
type guardedRelayConn struct {
	net.PacketConn
	own func() *ownAddrs
}

func (c *guardedRelayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		if own := c.own(); own != nil && own.contains(ua.AddrPort()) {
			return len(p), nil
		}
	}
	return c.PacketConn.WriteTo(p, addr)
}
