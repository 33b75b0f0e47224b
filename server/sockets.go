package server

import (
	"errors"
	"net"

	"github.com/stunfault/stunfault/config"
)

// WithPacketConn serves STUN/TURN over UDP on pc, a socket the caller owns
// until then: a socket with a special option, one from pion's vnet virtual
// network, one a fixture handed out. It is served beside the config's
// [[listen]] entries (which may then be empty) as a "udp" listener, with
// every rule applying as on a socket the server bound; the server closes it
// in Close. Relays are still bound by the server on [relay].address.
func WithPacketConn(pc net.PacketConn) Option {
	return func(o *options) { o.packetConns = append(o.packetConns, pc) }
}

// WithListener serves STUN/TURN over TCP on ln, a listener the caller owns
// until then (wrap it with crypto/tls.NewListener first for TLS: rules see
// the decrypted stream either way). Like WithPacketConn it is served beside
// the config's [[listen]] entries, as a "tcp" listener, and closed in
// Close.
func WithListener(ln net.Listener) Option {
	return func(o *options) { o.listeners = append(o.listeners, ln) }
}

// addCallerSockets appends the sockets given by WithPacketConn and
// WithListener to b, after the config's.
func (b *boundSockets) addCallerSockets(o *options) {
	for _, pc := range o.packetConns {
		b.packetConns = append(b.packetConns, []net.PacketConn{pc}) // one read loop: the caller made one socket
		b.addrs = append(b.addrs, Listener{Transport: "udp", Addr: addrPort(pc.LocalAddr()), ReadLoops: 1})
	}
	for _, ln := range o.listeners {
		b.listeners = append(b.listeners, ln)
		b.certs = append(b.certs, nil)
		b.addrs = append(b.addrs, Listener{Transport: "tcp", Addr: addrPort(ln.Addr())})
	}
}

// validateWith checks cfg as New does: with caller-supplied sockets, the
// config needs no [[listen]] entry of its own.
func validateWith(cfg config.Config, o *options) error {
	err := cfg.Validate()
	if err == nil || len(o.packetConns)+len(o.listeners) == 0 || len(cfg.Listen) > 0 {
		return err
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return err
	}
	var kept config.Errors
	for _, e := range errs {
		if e.Field != "listen" {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return kept
}
