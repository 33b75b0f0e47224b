package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
)

// magicCookie is STUN's fixed header word (RFC 8489 §5).
const magicCookie = 0x2112A442

// inflight is one outstanding Binding transaction.
type inflight struct {
	id [stun.TransactionIDSize]byte
	at time.Time
}

// bindingSocket is one client socket of a Binding load. Only its own
// goroutine touches it.
type bindingSocket struct {
	l      *STUN
	b      *budget
	t      *tally
	c      net.Conn
	stream bool
	r      *bufio.Reader
	local  netip.AddrPort

	pending map[[stun.TransactionIDSize]byte]time.Time
	order   []inflight // send order; entries already answered are skipped
	prefix  uint32
	next    uint64
	wbuf    []byte
	rbuf    []byte
	msg     stun.Message
	hdr     [20]byte
}

func runBinding(ctx context.Context, l *STUN, b *budget, t *tally) error {
	c, err := dial(ctx, l)
	if err != nil {
		return fmt.Errorf("loadgen: dialing %s over %s: %w", l.Target, l.Transport, err)
	}
	defer func() { _ = c.Close() }()
	// Wake a blocked read when the load's time is up.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	s := &bindingSocket{
		l: l, b: b, t: t, c: c,
		stream:  l.Transport != "udp",
		pending: make(map[[stun.TransactionIDSize]byte]time.Time, l.Window),
		prefix:  rand.Uint32(),
		rbuf:    make([]byte, 64<<10),
	}
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		s.local = ap
	}
	if s.stream {
		s.r = bufio.NewReaderSize(c, 64<<10)
	}
	return s.run(ctx)
}

func (s *bindingSocket) run(ctx context.Context) error {
	for {
		if ctx.Err() == nil {
			if err := s.fill(); err != nil {
				return err
			}
		}
		if len(s.pending) == 0 {
			return nil // the budget is spent (or the time is up) and every answer is in
		}
		oldest := s.oldest()
		if err := s.c.SetReadDeadline(oldest.Add(s.l.Timeout)); err != nil {
			return err
		}
		if ctx.Err() != nil && time.Now().After(oldest.Add(s.l.Timeout)) {
			s.expire(time.Now())
			continue
		}
		data, err := s.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.expire(time.Now())
				continue
			}
			s.t.lost += len(s.pending)
			return fmt.Errorf("loadgen: reading from %s: %w", s.l.Target, err)
		}
		s.handle(data)
	}
}

// fill sends new requests until the window is full or the budget is spent.
func (s *bindingSocket) fill() error {
	s.wbuf = s.wbuf[:0]
	now := time.Now()
	for len(s.pending) < s.l.Window && s.b.take() {
		var id [stun.TransactionIDSize]byte
		binary.BigEndian.PutUint32(id[:4], s.prefix)
		binary.BigEndian.PutUint64(id[4:], s.next)
		s.next++
		s.pending[id] = now
		s.order = append(s.order, inflight{id: id, at: now})
		s.t.sent++
		start := len(s.wbuf)
		s.wbuf = binary.BigEndian.AppendUint16(s.wbuf, 0x0001) // Binding request
		s.wbuf = binary.BigEndian.AppendUint16(s.wbuf, 0)
		s.wbuf = binary.BigEndian.AppendUint32(s.wbuf, magicCookie)
		s.wbuf = append(s.wbuf, id[:]...)
		if !s.stream { // one datagram per request
			if _, err := s.c.Write(s.wbuf[start:]); err != nil {
				return fmt.Errorf("loadgen: sending to %s: %w", s.l.Target, err)
			}
			s.wbuf = s.wbuf[:0]
		}
	}
	if s.stream && len(s.wbuf) > 0 { // every new request in one write
		if _, err := s.c.Write(s.wbuf); err != nil {
			return fmt.Errorf("loadgen: sending to %s: %w", s.l.Target, err)
		}
	}
	return nil
}

// oldest returns when the oldest outstanding request was sent.
func (s *bindingSocket) oldest() time.Time {
	for len(s.order) > 0 {
		if _, ok := s.pending[s.order[0].id]; ok {
			return s.order[0].at
		}
		s.order = s.order[1:]
	}
	return time.Now()
}

// expire counts as lost every request older than the timeout.
func (s *bindingSocket) expire(now time.Time) {
	for len(s.order) > 0 {
		f := s.order[0]
		if _, ok := s.pending[f.id]; ok {
			if now.Sub(f.at) < s.l.Timeout {
				return
			}
			delete(s.pending, f.id)
			s.t.lost++
		}
		s.order = s.order[1:]
	}
}

// read returns the next whole STUN message from the server.
func (s *bindingSocket) read() ([]byte, error) {
	if !s.stream {
		n, err := s.c.Read(s.rbuf)
		return s.rbuf[:n], err
	}
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(s.hdr[2:4]))
	buf := append(s.rbuf[:0], s.hdr[:]...)
	buf = buf[:20+n]
	if _, err := io.ReadFull(s.r, buf[20:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// handle checks one answer and counts it.
func (s *bindingSocket) handle(data []byte) {
	s.msg.Raw = append(s.msg.Raw[:0], data...)
	if err := s.msg.Decode(); err != nil {
		s.t.invalidf("an answer that is not STUN: %v", err)
		return
	}
	sent, ok := s.pending[s.msg.TransactionID]
	if !ok {
		return // a late answer to a request already counted as lost, or a duplicate
	}
	delete(s.pending, s.msg.TransactionID)
	if s.msg.Type.Method != stun.MethodBinding {
		s.t.invalidf("answer is %v, want a Binding response", s.msg.Type)
		return
	}
	switch s.msg.Type.Class {
	case stun.ClassSuccessResponse:
		var xor stun.XORMappedAddress
		if err := xor.GetFrom(&s.msg); err != nil {
			s.t.invalidf("Binding success without XOR-MAPPED-ADDRESS: %v", err)
			return
		}
		if s.local.IsValid() && (xor.Port != int(s.local.Port()) || !xor.IP.Equal(net.IP(s.local.Addr().AsSlice()))) {
			s.t.invalidf("XOR-MAPPED-ADDRESS %s:%d, want the client's own %s", xor.IP, xor.Port, s.local)
			return
		}
	case stun.ClassErrorResponse:
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(&s.msg); err != nil {
			s.t.invalidf("Binding error without ERROR-CODE: %v", err)
			return
		}
		s.t.errors[int(ec.Code)]++
	default:
		s.t.invalidf("answer of class %v", s.msg.Type.Class)
		return
	}
	s.t.answer(time.Since(sent))
}
