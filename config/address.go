package config

import (
	"net"
	"net/netip"
)

// localhost is what the host name "localhost" means in an address: stunfault
// accepts that one name, as 127.0.0.1, and never asks a resolver about it
// (or about anything else: every other host must be an IP address).
var localhost = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// hostIP returns the IP address host stands for: localhost is 127.0.0.1,
// and an IPv4-mapped IPv6 address is its IPv4 address.
func hostIP(host string) (netip.Addr, bool) {
	if host == "localhost" {
		return localhost, true
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// BindAddress returns the address to bind for addr, a valid [[listen]] or
// [http] address: "localhost:PORT" becomes "127.0.0.1:PORT", so that what
// is bound is what Validate checked, with no resolver involved; any other
// address is returned as it is.
func BindAddress(addr string) string {
	if h, p, err := net.SplitHostPort(addr); err == nil && h == "localhost" {
		return net.JoinHostPort(localhost.String(), p)
	}
	return addr
}

// binding is one socket the config asks for, for the checks that serve
// could bind them all.
type binding struct {
	field     string // "listen[1]" or "http"
	transport string // as written: udp, tcp, tls
	kind      string // the socket: udp or tcp (a tls listener is a TCP socket)
	addr      string // as written
	ip        netip.Addr
	port      int
}

// clash reports whether a and b cannot both be bound: the same transport and
// port, and the same address or either one unspecified (0.0.0.0 and :: take
// the port on every address, of both families: Go binds them dual-stack).
// Port 0 never clashes.
func (a binding) clash(b binding) bool {
	return a.kind == b.kind && a.port != 0 && a.port == b.port &&
		(a.ip == b.ip || a.ip.IsUnspecified() || b.ip.IsUnspecified())
}

func (a binding) String() string { return a.transport + " " + a.addr }
