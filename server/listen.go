package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/stunfault/stunfault/config"
)

// Listener is one bound STUN/TURN listening socket, as read back after Start.
type Listener struct {
	// Transport is "udp", "tcp" or "tls".
	Transport string `json:"transport"`
	// Addr is the address the socket is bound to (the real port when the
	// config said 0).
	Addr netip.AddrPort `json:"address"`
	// CertFile is a tls listener's PEM certificate: the configured
	// cert_file, or the self-signed one generated at Start (removed by
	// Close). Clients that check certificates can be told to trust it.
	CertFile string `json:"cert_file,omitempty"`
	// SPKI is the base64 SHA-256 of a tls listener's SubjectPublicKeyInfo:
	// Chromium trusts a self-signed TURN server with
	// --ignore-certificate-errors-spki-list=SPKI.
	SPKI string `json:"spki_sha256,omitempty"`
	// ReadLoops is how many sockets a udp listener serves its address on,
	// each with its own pion read loop ([server] read_loops; 1 for a
	// caller's socket and off Linux). 0 for tcp and tls.
	ReadLoops int `json:"read_loops,omitempty"`
}

// boundSockets are the sockets Start bound, in config order.
type boundSockets struct {
	// packetConns holds each udp listener's sockets, one per read loop, all
	// bound to its address (see bindLoops); the first is the one that
	// picked the port.
	packetConns [][]net.PacketConn
	listeners   []net.Listener
	// certs holds, beside each of listeners, the certificate of a tls
	// listener (nil for tcp).
	certs []*listenerCert
	addrs []Listener
}

func (b *boundSockets) close() error {
	var errs []error
	for _, pcs := range b.packetConns {
		for _, pc := range pcs {
			errs = append(errs, pc.Close())
		}
	}
	for _, l := range b.listeners {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// pairRetries bounds the attempts to find a port free for both UDP and TCP.
const pairRetries = 10

// bindListeners binds every [[listen]] entry, in config order. A udp and a
// tcp entry with the same address and port 0 get the same port (TCP is bound
// first, then UDP on its port, retried with a new port when that one is
// taken, as coredns's dnstest does), so stun: and turn:?transport=tcp URLs
// share host:port as they do on real servers.
//
// A udp listener is loops sockets on one address (bindLoops). A tls
// listener is a TCP socket whose certificate is loaded, or generated into
// certDir(), here.
func bindListeners(ctx context.Context, listen []config.Listener, loops int, certDir func() (string, error)) (*boundSockets, error) {
	listen = bindAddresses(listen)
	var lc net.ListenConfig
	b := &boundSockets{}
	pairs := map[string]*pair{}
	for addr := range pairedZeroPorts(listen) {
		p, err := bindPair(ctx, &lc, addr)
		if err != nil {
			for _, p := range pairs {
				p.close()
			}
			return nil, fmt.Errorf("server: listen %s: %w", addr, err)
		}
		pairs[addr] = p
	}
	fail := func(err error) (*boundSockets, error) {
		errs := []error{err, b.close()}
		for _, p := range pairs {
			p.close()
		}
		return nil, errors.Join(errs...)
	}

	for i, l := range listen {
		p := pairs[l.Address]
		switch l.Transport {
		case "udp":
			var pc net.PacketConn
			if p != nil && p.udp != nil {
				pc, p.udp = p.udp, nil
			} else {
				var err error
				if pc, err = lc.ListenPacket(ctx, "udp", l.Address); err != nil {
					return fail(fmt.Errorf("server: listen[%d]: %w", i, err))
				}
			}
			pcs, err := bindLoops(ctx, pc, loops)
			if err != nil {
				return fail(errors.Join(fmt.Errorf("server: listen[%d]: read loops: %w", i, err), pc.Close()))
			}
			b.packetConns = append(b.packetConns, pcs)
			b.addrs = append(b.addrs, Listener{Transport: "udp", Addr: addrPort(pc.LocalAddr()), ReadLoops: len(pcs)})
		case "tcp":
			var ln net.Listener
			if p != nil && p.tcp != nil {
				ln, p.tcp = p.tcp, nil
			} else {
				var err error
				if ln, err = lc.Listen(ctx, "tcp", l.Address); err != nil {
					return fail(fmt.Errorf("server: listen[%d]: %w", i, err))
				}
			}
			b.listeners = append(b.listeners, ln)
			b.certs = append(b.certs, nil)
			b.addrs = append(b.addrs, Listener{Transport: "tcp", Addr: addrPort(ln.Addr())})
		case "tls":
			ln, err := lc.Listen(ctx, "tcp", l.Address)
			if err != nil {
				return fail(fmt.Errorf("server: listen[%d]: %w", i, err))
			}
			b.listeners = append(b.listeners, ln)
			b.certs = append(b.certs, nil)
			dir, err := certDir()
			if err != nil {
				return fail(fmt.Errorf("server: listen[%d]: %w", i, err))
			}
			cert, err := newListenerCert(l, addrPort(ln.Addr()), dir)
			if err != nil {
				return fail(fmt.Errorf("server: listen[%d]: %w", i, err))
			}
			b.certs[len(b.certs)-1] = cert
			b.addrs = append(b.addrs, Listener{Transport: "tls", Addr: addrPort(ln.Addr()), CertFile: cert.file, SPKI: cert.spki})
		default:
			return fail(fmt.Errorf("server: listen[%d].transport: unknown transport %q (want udp, tcp or tls)", i, l.Transport))
		}
	}
	return b, nil
}

// pair is a TCP listener and a UDP socket on the same port, until each is
// handed to its [[listen]] entry.
type pair struct {
	tcp net.Listener
	udp net.PacketConn
}

func (p *pair) close() {
	if p.tcp != nil {
		_ = p.tcp.Close()
	}
	if p.udp != nil {
		_ = p.udp.Close()
	}
}

// pairedZeroPorts returns the port-0 addresses that have both a udp and a tcp
// entry.
func pairedZeroPorts(listen []config.Listener) map[string]bool {
	seen := map[string]map[string]bool{}
	for _, l := range listen {
		if _, port, err := net.SplitHostPort(l.Address); err != nil || port != "0" {
			continue
		}
		if seen[l.Address] == nil {
			seen[l.Address] = map[string]bool{}
		}
		seen[l.Address][l.Transport] = true
	}
	paired := map[string]bool{}
	for addr, ts := range seen {
		if ts["udp"] && ts["tcp"] {
			paired[addr] = true
		}
	}
	return paired
}

// bindPair binds TCP on a free port of address's host, then UDP on the same
// port, retrying with another port while UDP finds that one taken.
func bindPair(ctx context.Context, lc *net.ListenConfig, address string) (*pair, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range pairRetries {
		ln, err := lc.Listen(ctx, "tcp", address)
		if err != nil {
			return nil, err
		}
		port := addrPort(ln.Addr()).Port()
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err == nil {
			return &pair{tcp: ln, udp: pc}, nil
		}
		_ = ln.Close()
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("no port free for both udp and tcp: %w", lastErr)
}

// addrPort returns a socket's address, an IPv4 one unmapped (a socket that
// is not the kernel's, such as pion's vnet, may hold IPv4 in 16 bytes).
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
