package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// udpBatchSize is how many datagrams one system call reads (recvmmsg) or
// sends (sendmmsg) at most. Each read slot holds the largest datagram, so a
// read loop holds udpBatchSize x 64 KiB of buffers (touched only as far as
// datagrams fill them), and at most udpBatchSize queued answers.
const udpBatchSize = 16

// udpBatch is the batched socket I/O beneath a packetConn on Linux: the
// reader takes datagrams from the socket udpBatchSize per system call and
// hands pion one per ReadFrom; the answers pion writes from its read loop
// while datagrams of the batch are still due to it wait in a queue, and go
// out in one system call with the answer to the batch's last datagram, or
// before the reader blocks again (flush), whichever comes first. So no
// answer waits longer than pion takes to handle one batch. stunfault's own
// replies to the batch's datagrams (an error effect's, the relay guard's)
// join the same queue, after the message is in the trace. Any other write
// from the read loop sends the queue first, so a client's messages keep
// their order; writes from relay goroutines do not wait.
//
// The system calls are recvmmsg and sendmmsg on the socket's RawConn, with
// headers and addresses kept across calls (udpmmsg_linux.go). The first
// datagram of a batch is read straight into pion's buffer, so with one
// datagram at a time (a ping-pong) nothing is copied; the others wait in the
// batch's own slots. Senders come back as netip.AddrPort, and pion gets them
// as *net.UDPAddr from a small cache (addrCache), so a message costs no
// allocation.
type udpBatch struct {
	guard *udpGuard // its retries and failure record apply to batched reads

	// Read side: only pion's read loop reads.
	rd         *mmsgBatch
	slots      [udpBatchSize][]byte // slot 0 unused: pion's buffer takes its place
	next, have int                  // datagrams next to have-1 are due to pion
	left       atomic.Int32         // have - next, for the writers
	addrs      addrCache

	// Relays' queued writes to peers (peerbatch.go), sent with the
	// answers: at most one entry per relay that wrote during the batch.
	pmu    sync.Mutex
	parked []*relayOut
	spare  []*relayOut  // the reader's: parked's other array
	nparks atomic.Int32 // len(parked): the reader skips the lock when 0

	wmu    sync.Mutex
	queued atomic.Int32 // nout: a writer skips the lock when 0
	wr     *mmsgBatch
	nout   int
	vecs   [udpBatchSize][]byte // the queued answers' bytes, reused
}

// newUDPBatch returns the batched I/O for the socket beneath g, or nil when
// there is none: not Linux (no recvmmsg), or not a *net.UDPConn (a caller's
// socket, pion's vnet).
func newUDPBatch(g *udpGuard) *udpBatch {
	uc, ok := g.PacketConn.(*net.UDPConn)
	if !ok {
		return nil
	}
	rd, err := newMmsgBatch(uc)
	if err != nil {
		return nil
	}
	wr, err := newMmsgBatch(uc)
	if err != nil {
		return nil
	}
	b := &udpBatch{guard: g, rd: rd, wr: wr, addrs: newAddrCache(listenerAddrBits)}
	mem := make([]byte, (udpBatchSize-1)*inboundMTU)
	for i := 1; i < udpBatchSize; i++ {
		b.slots[i] = mem[(i-1)*inboundMTU : i*inboundMTU : i*inboundMTU]
		rd.setIn(i, b.slots[i])
	}
	return b
}

// due reports whether datagrams of the batch are still due to pion: if
// not, the next readFrom reads the socket.
func (b *udpBatch) due() bool { return b.next < b.have }

// readFrom puts the next datagram of the batch into p and returns its
// length and sender, reading the next batch (after sending the queued
// answers) when this one is used up.
func (b *udpBatch) readFrom(p []byte) (int, net.Addr, netip.AddrPort, error) {
	if b.next < b.have {
		n, ap := b.rd.received(b.next)
		n = copy(p, b.slots[b.next][:n])
		b.next++
		b.left.Store(int32(b.have - b.next))
		return n, b.addrs.get(ap), ap, nil
	}
	b.flushPeers()
	b.flush() // every answer to the batch is out before the read blocks
	var have int
	err := b.guard.retry(func() (err error) {
		have, err = b.rd.recv(p, udpBatchSize)
		return err
	})
	if err != nil {
		b.next, b.have = 0, 0
		return 0, nil, netip.AddrPort{}, err
	}
	b.next, b.have = 1, have
	b.left.Store(int32(have - 1))
	n, ap := b.rd.received(0)
	return n, b.addrs.get(ap), ap, nil
}

// answer queues pion's answer p to addr while datagrams of the batch are
// still due to pion, and sends the queue with it when p answers the last
// one. It reports false when p is not queued: the caller sends it.
func (b *udpBatch) answer(p []byte, addr netip.AddrPort) bool {
	if b.left.Load() == 0 && b.queued.Load() == 0 {
		return false // the batch's only answer: no reason to wait
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.nout == udpBatchSize {
		b.flushLocked()
	}
	i := b.nout
	b.vecs[i] = append(b.vecs[i][:0], p...)
	if !b.wr.setOut(i, b.vecs[i], addr) {
		b.flushLocked() // the caller's write comes after the queue
		return false
	}
	b.nout++
	b.queued.Store(int32(b.nout))
	if b.left.Load() == 0 {
		b.flushLocked()
	}
	return true
}

// flush sends the queued answers.
func (b *udpBatch) flush() {
	if b.queued.Load() == 0 {
		return
	}
	b.wmu.Lock()
	b.flushLocked()
	b.wmu.Unlock()
}

// flushPeers sends the relays' queued writes to peers. Only the reader
// calls it.
func (b *udpBatch) flushPeers() {
	if b.nparks.Load() == 0 {
		return
	}
	b.pmu.Lock()
	list := b.parked
	b.parked = b.spare[:0] // writers park on the other array meanwhile
	b.nparks.Store(0)
	b.pmu.Unlock()
	for i, o := range list {
		o.flush()
		list[i] = nil
	}
	b.spare = list[:0]
}

// park has flushPeers send o's queued writes.
func (b *udpBatch) park(o *relayOut) {
	b.pmu.Lock()
	b.parked = append(b.parked, o)
	b.nparks.Store(int32(len(b.parked)))
	b.pmu.Unlock()
}

// writeTo sends p to addr at once, after the queued answers. to is addr as
// an AddrPort: when the socket can send to it, p goes out by sendmmsg, the
// cheaper call (see udpmmsg_linux.go); else (the zero AddrPort, or an
// address of the other family) by pc.WriteTo.
func (b *udpBatch) writeTo(pc net.PacketConn, p []byte, addr net.Addr, to netip.AddrPort) (int, error) {
	if to.IsValid() {
		b.wmu.Lock()
		if b.nout > 0 {
			b.flushLocked()
		}
		if b.wr.setOut(0, p, to) {
			n, err := b.wr.send(0, 1)
			b.wr.forget(0) // p is the caller's again
			b.wmu.Unlock()
			if n == 1 {
				return len(p), nil
			}
			return 0, err
		}
		b.wmu.Unlock()
	} else if b.queued.Load() != 0 {
		b.flush()
	}
	return pc.WriteTo(p, addr)
}

func (b *udpBatch) flushLocked() {
	for i := 0; i < b.nout; {
		n, err := b.wr.send(i, b.nout)
		if err != nil {
			// As a failed WriteTo of pion's: the answer is lost, the
			// client retransmits. Skip the one that failed.
			n = max(n, 1)
		}
		i += n
	}
	b.nout = 0
	b.queued.Store(0)
}
