package server

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatchSize is how many datagrams one system call reads (recvmmsg) or
// sends (sendmmsg) at most. Each read slot holds the largest datagram, so a
// read loop holds udpBatchSize x 64 KiB of buffers (touched only as far as
// datagrams fill them), and at most udpBatchSize queued answers.
const udpBatchSize = 16

// batchConn is the batched I/O of golang.org/x/net's ipv4 and ipv6
// PacketConn (one Message type for both).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpBatch is the batched socket I/O beneath a packetConn on Linux: the
// reader takes datagrams from the socket udpBatchSize per system call and
// hands pion one per ReadFrom; the answers pion writes from its read loop
// while datagrams of the batch are still due to it wait in a queue, and go
// out in one system call with the answer to the batch's last datagram, or
// before the reader blocks again (flush), whichever comes first. So no
// answer waits longer than pion takes to handle one batch. Any other write
// from the read loop (an injected reply) sends the queue first, so a
// client's messages keep their order; writes from relay goroutines do not
// wait.
type udpBatch struct {
	conn  batchConn
	guard *udpGuard // its retries and failure record apply to batched reads

	// Read side: only pion's read loop reads.
	in         []ipv4.Message
	next, have int          // in[next:have] are due to pion
	left       atomic.Int32 // have - next, for the writers

	wmu    sync.Mutex
	queued atomic.Int32 // nout: a writer skips the lock when 0
	out    [udpBatchSize]ipv4.Message
	nout   int
	vecs   [udpBatchSize][1][]byte // out[i].Buffers, the bytes reused
}

// newUDPBatch returns the batched I/O for the socket beneath g, or nil when
// there is none: not Linux (x/net reads one datagram per call elsewhere, no
// gain), or not a *net.UDPConn (a caller's socket, pion's vnet).
func newUDPBatch(g *udpGuard) *udpBatch {
	uc, ok := g.PacketConn.(*net.UDPConn)
	if !ok || runtime.GOOS != "linux" {
		return nil
	}
	b := &udpBatch{guard: g, in: make([]ipv4.Message, udpBatchSize)}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		b.conn = ipv6.NewPacketConn(uc)
	} else {
		b.conn = ipv4.NewPacketConn(uc)
	}
	mem := make([]byte, udpBatchSize*inboundMTU)
	for i := range b.in {
		b.in[i].Buffers = [][]byte{mem[i*inboundMTU : (i+1)*inboundMTU : (i+1)*inboundMTU]}
	}
	return b
}

// readFrom copies the next datagram of the batch into p, reading the next
// batch (after sending the queued answers) when this one is used up.
func (b *udpBatch) readFrom(p []byte) (int, net.Addr, error) {
	if b.next == b.have {
		b.flush() // every answer to the batch is out before the read blocks
		var n int
		err := b.guard.retry(func() (err error) {
			n, err = b.conn.ReadBatch(b.in, 0)
			return err
		})
		if err != nil {
			return 0, nil, err
		}
		b.next, b.have = 0, n
	}
	m := &b.in[b.next]
	b.next++
	b.left.Store(int32(b.have - b.next))
	return copy(p, m.Buffers[0][:m.N]), m.Addr, nil
}

// answer queues pion's answer p to addr while datagrams of the batch are
// still due to pion, and sends the queue with it when p answers the last
// one. It reports false when p is not queued: the caller sends it.
func (b *udpBatch) answer(p []byte, addr net.Addr) bool {
	if b.left.Load() == 0 && b.queued.Load() == 0 {
		return false // the batch's only answer: no reason to wait
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.nout == udpBatchSize {
		b.flushLocked()
	}
	i := b.nout
	b.vecs[i][0] = append(b.vecs[i][0][:0], p...)
	b.out[i] = ipv4.Message{Buffers: b.vecs[i][:], Addr: addr}
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

// writeTo sends p to addr at once, after the queued answers.
func (b *udpBatch) writeTo(pc net.PacketConn, p []byte, addr net.Addr) (int, error) {
	if b.queued.Load() != 0 {
		b.flush()
	}
	return pc.WriteTo(p, addr)
}

func (b *udpBatch) flushLocked() {
	ms := b.out[:b.nout]
	for len(ms) > 0 {
		n, err := b.conn.WriteBatch(ms, 0)
		if err != nil {
			// As a failed WriteTo of pion's: the answer is lost, the
			// client retransmits. Skip the one that failed.
			n = max(n, 1)
		}
		ms = ms[n:]
	}
	for i := range b.nout {
		b.out[i].Addr = nil // let the address go
	}
	b.nout = 0
	b.queued.Store(0)
}
