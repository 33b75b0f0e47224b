package server

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/pion/turn/v5"
)

// A udp listener is served by [server] read_loops sockets bound to its one
// address with SO_REUSEPORT, each handed to pion as its own
// PacketConnConfig: pion gives each its own read loop and its own
// allocation manager. The kernel picks the socket of a datagram by a hash
// of its 4-tuple, so all of a client's datagrams reach one socket, and an
// allocation lives in exactly one manager: the one whose relay generator
// made its relay (allocTable.claim records which). stunfault's own state
// (the allocation table, quotas, nonce rotation, machines, trace, metrics
// and stats) is the server's, not a socket's, so it sees one listener.
//
// The first socket is bound without SO_REUSEPORT, so the kernel gives it
// a port no other socket holds (with SO_REUSEPORT set, a port-0 bind may
// land on a port another SO_REUSEPORT socket of the same user already has,
// and share its traffic); only then is SO_REUSEPORT set on it and the
// others bound to its address. Afterwards a process of the same user that
// binds that very port with SO_REUSEPORT joins the group, as with any
// SO_REUSEPORT server.

// udpReadBuffer is the receive buffer (SO_RCVBUF) asked for each socket of
// a udp listener the server binds, as coturn asks for its own (2 MiB): with
// Linux's default (net.core.rmem_default, 208 KiB) a burst of a few
// hundred datagrams while the read loop is off the CPU overflowed it, and
// turnutils_uclient lost up to 3 % of its relayed messages, with one read
// loop or two. Linux grants at most net.core.rmem_max (208 KiB by
// default: raise it to benefit); the memory is the kernel's, used only by
// datagrams waiting. A caller's socket (WithPacketConn) keeps its own.
const udpReadBuffer = 2 << 20

// bindLoops returns first and loops-1 more sockets bound to its address,
// or first alone when loops is 1 or the system has no SO_REUSEPORT (not
// Linux); each with the receive buffer udpReadBuffer. On an error it
// closes only the sockets it bound.
func bindLoops(ctx context.Context, first net.PacketConn, loops int) ([]net.PacketConn, error) {
	pcs := []net.PacketConn{first}
	uc, ok := first.(*net.UDPConn)
	if !ok {
		return pcs, nil
	}
	_ = uc.SetReadBuffer(udpReadBuffer) // best effort: the kernel caps it, and the default serves
	if loops <= 1 || !reusePortSupported {
		return pcs, nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := reusePort(rc); err != nil {
		return nil, fmt.Errorf("setting SO_REUSEPORT: %w", err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c rawConn) error { return reusePort(c) }}
	addr := first.LocalAddr().String()
	for range loops - 1 {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			errs := []error{err}
			for _, pc := range pcs[1:] {
				errs = append(errs, pc.Close())
			}
			return nil, errors.Join(errs...)
		}
		if uc, ok := pc.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(udpReadBuffer)
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}

// udpListener is a udp listener's read loops, in bind order.
type udpListener struct {
	lis   Listener
	loops []*packetConn
}

// loopGenerator is the relay generator of one read loop's allocation
// manager: it tells the allocation table which loop each relay it makes
// belongs to, so that an expiry reaches the manager that holds the
// allocation (pion creates the allocation, and reports it, right after
// its relay is made).
type loopGenerator struct {
	turn.RelayAddressGenerator
	loop   *packetConn
	allocs *allocTable
}

// AllocatePacketConn makes a UDP relay and records its read loop.
func (g loopGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.RelayAddressGenerator.AllocatePacketConn(c)
	if err == nil {
		g.allocs.claim(addr, g.loop)
		if p, ok := pc.(*peerConn); ok {
			p.servedBy(g.loop)
		}
	}
	return pc, addr, err
}
