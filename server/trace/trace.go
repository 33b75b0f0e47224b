package trace

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// DefaultSize is how many messages a trace keeps when [server].trace_size
// is not set: the default config's value.
const DefaultSize = 10000

// DefaultCaptureBytes is the default size of the byte ring behind captures
// ([server].capture_bytes): 4 MiB, some 40 000 typical STUN messages.
const DefaultCaptureBytes = 4 << 20

// MaxUsername is how many bytes of a USERNAME a Message keeps.
const MaxUsername = 64

// readBatch bounds what one reader copies while holding the ring's lock:
// the packet path waits at most for this many entries (and readBytes
// bytes) to be copied, a few microseconds.
const (
	readBatch = 256
	readBytes = 256 << 10
)

// Kind is what a recorded message is, by its header.
type Kind uint8

// Kinds of messages.
const (
	// Other is neither STUN nor ChannelData (it matches no rule).
	Other Kind = iota
	// STUN is a STUN or TURN message: Method, Class and TxID are set.
	STUN
	// ChannelData is a TURN ChannelData message: Channel is set.
	ChannelData
	// RelaySummary counts the relayed data (ChannelData, Send and Data
	// indications) no rule fired on of one allocation and direction within
	// one second, instead of one Message each: Count messages of Size bytes
	// in all, from Time on, with Channel set (ChannelData) or Method (Send,
	// Data indications). It is recorded when its second is over, when
	// another allocation's data takes its place, or when the trace is read
	// (the count then goes on in a new summary).
	RelaySummary
)

// String returns "stun", "channeldata" or "other".
func (k Kind) String() string {
	switch k {
	case STUN:
		return "stun"
	case ChannelData:
		return "channeldata"
	case RelaySummary:
		return "relay_summary"
	}
	return "other"
}

// Message is one message the server saw, as read back from the trace.
type Message struct {
	// Seq numbers the trace's messages from 1, strictly increasing.
	Seq uint64
	// Time is when the server saw the message, on the server's clock (the
	// clock journal entries are stamped with).
	Time time.Time
	// Local is the server's address the message came to or left from: the
	// listener's (for a TCP connection, the connection's local address).
	Local netip.AddrPort
	// Client is the client's address: the source of an inbound message, the
	// destination of an outbound one.
	Client netip.AddrPort
	// Transport and Dir say how and which way the message went.
	Transport faults.Transport
	Dir       faults.Direction
	// Kind says what the header is; Method, Class and TxID are those of a
	// STUN message, Channel the channel number of a ChannelData message.
	Kind    Kind
	Method  faults.Method
	Class   faults.Class
	Channel uint16
	TxID    [12]byte
	// Size is the whole message's size in bytes (a RelaySummary's: all of
	// its messages').
	Size int
	// Count is how many messages a RelaySummary counts (1 otherwise).
	Count int
	// Username is the USERNAME of a request, its first MaxUsername bytes
	// ("" when there is none).
	Username string
	// Decision is what the server did with the message.
	Decision Decision
}

// slot is a Message as the ring keeps it: 64 bytes, one cache line, with
// copies of the header fields (no slice into the packet) and no pointer (the
// garbage collector never scans the slots), so recording allocates nothing
// and writes one line. What only a message something acted on has (the
// rule, code, journal seq, the bytes sent) is beside it in Ring.fired,
// written only for those; so are usernames (Ring.users), written only for
// requests that carry one. The local address is a Local, an index into
// Ring.locals, which holds each address once.
type slot struct {
	nanos int64 // Time, as nanoseconds since Ring.base
	// Where the bytes received are in the byte ring (with flagData; their
	// length is size); a RelaySummary's count.
	dataOff   uint64
	client    [16]byte
	txid      [12]byte
	size      uint32
	cport     uint16
	local     Local
	typ       uint16 // STUN message type, or the channel number
	transport faults.Transport
	dir       faults.Direction
	kind      Kind
	flags     uint8 // flag*
	ulen      uint8
}

// fired is what a slot with flagFired adds: 40 bytes.
type fired struct {
	rule   string
	jseq   uint64
	code   uint16
	action faults.ActionKind
	// Where the bytes sent instead are in the byte ring; length 0: none,
	// or not kept.
	sentLen uint32
	sentOff uint64
}

const (
	flagFired uint8 = 1 << iota
	flagGuard
	flagClient4 // client is IPv4
	flagChannel // a RelaySummary of ChannelData
	flagData    // the bytes received are in the byte ring
)

// maxLocals bounds the distinct local addresses a ring names (Ring.Local):
// listeners, and the concrete addresses TCP connections to a wildcard
// listener arrive on. Past them, Ring.Local names the zero address.
const maxLocals = 1024

// Local names a server address a ring records messages at: a listener's,
// or a TCP connection's local address. Ring.Local makes it once per socket,
// so that recording a message copies two bytes, not the address. The zero
// Local names the zero address.
type Local uint16

// Decision is what the server did with one message.
type Decision struct {
	// Action is the kind of action taken: Pass when nothing fired.
	Action faults.ActionKind
	// Fired reports whether something acted: a rule (Rule is its ID) or
	// stunfault's relay guard (Rule is "", Guard is set).
	Fired bool
	Guard bool
	// Rule is the ID of the rule that fired.
	Rule string
	// Code is the error code of an injected error.
	Code int
	// JournalSeq is the firing's journal sequence number (0 when no rule
	// fired).
	JournalSeq uint64
}

// Record is a Message read back from the trace with copies of its bytes.
type Record struct {
	Message
	// Listener names the listener the message came to or left from, as
	// "udp 127.0.0.1:3478" (filled by the server; "" when unknown).
	Listener string
	// Data holds the bytes the server received (inbound from the client,
	// outbound from pion); nil when they are no longer, or never were, in
	// the byte ring. Sent holds the bytes sent instead, for a message
	// stunfault changed (truncate, corrupt, mapped_address) or answered
	// itself (an injected error: the error response); nil otherwise.
	Data, Sent []byte
}

// Options configures a [Ring].
type Options struct {
	// Size is how many messages the ring keeps; 0 or less: none (New
	// returns nil).
	Size int
	// CaptureBytes is the size of the byte ring holding the messages'
	// bytes; 0 or less: bytes are not kept.
	CaptureBytes int
	// Clock stamps the messages; nil means faults.SystemClock.
	Clock faults.Clock
}

// Ring is a bounded record of every message the server saw, newest last:
// when it is full the oldest message goes. Its memory is fixed at New:
// Size slots of 64 bytes, plus 40 bytes (a rule that fired) and
// MaxUsername bytes each, and CaptureBytes of bytes: the default config's
// 10000 messages and 4 MiB take about 5.9 MB. It is safe for concurrent use.
//
// Writers (the packet path) and readers share one mutex; a reader copies at
// most readBatch entries and readBytes bytes per hold, so a writer never
// waits longer than that copy.
type Ring struct {
	// What recording a message touches comes first, in two cache lines
	// (and base, to read the clock).
	mu      sync.Mutex
	seq     uint64        // the latest Seq
	next    int           // where the next message goes in entries
	last    int64         // the latest slot's nanos: times never go back
	wpos    uint64        // logical write position in bytes (grows forever)
	wat     int           // wpos within bytes
	wake    chan struct{} // closed at the next record; nil: nobody waits
	entries []slot
	bytes   []byte
	system  bool    // clock is the system clock
	fired   []fired // beside entries, for slots with flagFired
	users   []byte  // MaxUsername bytes per slot

	clock faults.Clock
	// base is 1 ns before New. On the system clock a message's time is
	// taken as time.Since(base): one read of the monotonic clock, where
	// time.Now reads two clocks. Other clocks (a test's fake one) are read
	// as they are. Stamps are at least 1 (0 means "now").
	base    time.Time
	locals  []netip.AddrPort         // by Local; locals[0] is the zero address
	localIx map[netip.AddrPort]Local // the inverse of locals
	relay   [relayBuckets]bucket     // relay summaries being counted, see relay.go
	done    chan struct{}            // closed by Close
	once    sync.Once
}

// New returns a ring as opts say, or nil when opts.Size is 0 or less (a nil
// *Ring records nothing and reads empty).
func New(opts Options) *Ring {
	if opts.Size <= 0 {
		return nil
	}
	r := &Ring{clock: opts.Clock, entries: make([]slot, opts.Size), fired: make([]fired, opts.Size),
		users: make([]byte, opts.Size*MaxUsername), locals: []netip.AddrPort{{}},
		localIx: map[netip.AddrPort]Local{{}: 0}, done: make(chan struct{})}
	if r.clock == nil {
		r.clock = faults.SystemClock{}
	}
	_, r.system = r.clock.(faults.SystemClock)
	r.base = r.clock.Now().Add(-time.Nanosecond)
	if opts.CaptureBytes > 0 {
		r.bytes = make([]byte, opts.CaptureBytes)
	}
	return r
}

// Size returns how many messages the ring keeps (0 for a nil ring).
func (r *Ring) Size() int {
	if r == nil {
		return 0
	}
	return len(r.entries)
}

// Stamp is a moment on a ring's clock, as Now reads it. A socket's reader
// takes one per read from the socket (one recvmmsg batch, one TCP read) and
// records the messages of that read, and the answers pion writes to them
// from its read loop, at it: one clock read for them all. The zero Stamp
// means now: Record reads the clock.
type Stamp int64

// Now returns the ring's clock now (0 for a nil ring).
func (r *Ring) Now() Stamp {
	if r == nil {
		return 0
	}
	return Stamp(max(r.now(), 1))
}

// Record records one message: p as the server saw it at the time at (0:
// now), local the server's address it came to or left from (as r.Local
// names it), the verdict v it acted on, and sent, the bytes sent instead of
// p.Data when stunfault changed the message or answered it itself (nil
// otherwise). A time before the latest message's is taken as the latest's,
// so times never go back in Seq order. It returns the message's Seq (0 for
// a nil ring, and for relayed data no rule fired on, which is counted into
// a RelaySummary). It allocates nothing, and neither p nor v is retained.
func (r *Ring) Record(at Stamp, local Local, p *faults.Packet, v *faults.Verdict, sent []byte) uint64 {
	if r == nil {
		return 0
	}
	if at == 0 {
		at = r.Now()
	}
	h := headerOf(p, v)
	r.mu.Lock()
	seq := r.write(at, local, p, v, sent, &h)
	r.mu.Unlock()
	return seq
}

// RecordPair records two messages of one socket as Record does, under one
// hold of the lock: a message its reader read (p1, v1, sent1) and the
// answer written to it (p2, v2, sent2), both at the time at. It returns
// the answer's Seq.
func (r *Ring) RecordPair(at Stamp, local Local, p1 *faults.Packet, v1 *faults.Verdict, sent1 []byte,
	p2 *faults.Packet, v2 *faults.Verdict, sent2 []byte) uint64 {
	if r == nil {
		return 0
	}
	if at == 0 {
		at = r.Now()
	}
	h1, h2 := headerOf(p1, v1), headerOf(p2, v2)
	r.mu.Lock()
	r.write(at, local, p1, v1, sent1, &h1)
	seq := r.write(at, local, p2, v2, sent2, &h2)
	r.mu.Unlock()
	return seq
}

// header is what recording reads from a message before it takes the lock.
type header struct {
	kind  Kind
	typ   uint16
	relay bool   // relayed data no rule fired on: counted, not kept
	user  []byte // a request's USERNAME
}

// headerOf reads the header the engine's view classified, once.
func headerOf(p *faults.Packet, v *faults.Verdict) (h header) {
	switch {
	case p.IsSTUN():
		h.kind, h.typ = STUN, binary.BigEndian.Uint16(p.Data)
		switch p.Class() {
		case faults.ClassRequest:
			// Only requests carry USERNAME: answers and indications are
			// not scanned for it (the scan is most of what a message
			// costs here).
			h.user, _ = p.Username()
		case faults.ClassIndication:
			m := p.Method()
			h.relay = v.Action == nil && (m == faults.MethodSend || m == faults.MethodData)
		}
	case p.IsChannelData():
		h.kind, h.typ, h.relay = ChannelData, binary.BigEndian.Uint16(p.Data), v.Action == nil
	}
	return h
}

// write records one message whose header is h. The caller holds r.mu.
func (r *Ring) write(at Stamp, local Local, p *faults.Packet, v *faults.Verdict, sent []byte, h *header) uint64 {
	nanos := max(int64(at), r.last)
	r.last = nanos
	if h.relay {
		r.summarize(local, p, h.kind, h.typ, nanos)
		return 0
	}
	i := r.next
	m := r.slot()
	*m = slot{nanos: nanos, transport: p.Transport, dir: p.Dir, kind: h.kind, typ: h.typ, size: uint32(len(p.Data)), local: local}
	if len(h.user) > 0 {
		m.ulen = uint8(copy(r.users[i*MaxUsername:(i+1)*MaxUsername], h.user))
	}
	m.client, m.cport, m.flags = clientOf(p.Client)
	if h.kind == STUN {
		m.txid = [12]byte(p.Data[8:20])
	}
	if n := r.put(p.Data); n > 0 {
		m.dataOff, m.flags = r.wpos-uint64(n), m.flags|flagData
	}
	if v.Action != nil {
		r.writeFired(i, m, v, sent)
	}
	return r.seq
}

// writeFired records, in slot m (number i), what fired on its message (v)
// and what was sent instead (sent). Out of write, so that recording a
// passed message runs through few cache lines. The caller holds r.mu.
func (r *Ring) writeFired(i int, m *slot, v *faults.Verdict, sent []byte) {
	m.flags |= flagFired
	if v.Rule == "" {
		m.flags |= flagGuard
	}
	f := &r.fired[i]
	*f = fired{rule: v.Rule, jseq: v.Seq, code: uint16(v.Action.Code), action: v.Kind}
	if n := r.put(sent); n > 0 {
		f.sentOff, f.sentLen = r.wpos-uint64(n), uint32(n)
	}
}

// now returns the time since r.base, in nanoseconds.
func (r *Ring) now() int64 {
	if r.system {
		return int64(time.Since(r.base))
	}
	return int64(r.clock.Now().Sub(r.base))
}

// slot numbers the next message and returns its slot. The caller holds
// r.mu.
func (r *Ring) slot() *slot {
	if r.wake != nil {
		close(r.wake) // the reader takes the lock before it reads
		r.wake = nil
	}
	r.seq++
	m := &r.entries[r.next]
	if r.next++; r.next == len(r.entries) {
		r.next = 0
	}
	return m
}

// clientOf returns how a slot keeps a client's address.
func clientOf(client netip.AddrPort) (addr [16]byte, port uint16, flags uint8) {
	a := client.Addr()
	if a.Is4() || a.Is4In6() {
		flags = flagClient4
	}
	return a.As16(), client.Port(), flags
}

// Local returns the name of addr in r, adding it when it is new (at most
// maxLocals addresses; past them the zero Local). It takes the ring's lock:
// a socket calls it once, and records its messages with the Local.
func (r *Ring) Local(addr netip.AddrPort) Local {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.localIx[addr]
	if !ok && len(r.locals) < maxLocals {
		l = Local(len(r.locals))
		r.locals = append(r.locals, addr)
		r.localIx[addr] = l
	}
	return l
}

// message returns the Message slot i holds, whose Seq is seq. The caller
// holds r.mu.
func (r *Ring) message(i int, seq uint64) Message {
	m := &r.entries[i]
	out := Message{
		Seq: seq, Time: r.base.Add(time.Duration(m.nanos)), Transport: m.transport, Dir: m.dir,
		Kind: m.kind, Size: int(m.size), Count: 1,
		Client: netip.AddrPortFrom(addr(m.client, m.flags&flagClient4 != 0), m.cport),
	}
	if int(m.local) < len(r.locals) { // else another ring's Local
		out.Local = r.locals[m.local]
	}
	switch m.kind {
	case STUN:
		out.Method, out.Class, out.TxID = methodOf(m.typ), classOf(m.typ), m.txid
		if m.ulen > 0 {
			out.Username = string(r.users[i*MaxUsername : i*MaxUsername+int(m.ulen)])
		}
	case ChannelData:
		out.Channel = m.typ
	case RelaySummary:
		out.Count = int(m.dataOff)
		if m.flags&flagChannel != 0 {
			out.Channel = m.typ
		} else {
			out.Method, out.Class = methodOf(m.typ), classOf(m.typ)
		}
		return out
	}
	if m.flags&flagFired != 0 {
		f := &r.fired[i]
		out.Decision = Decision{Action: f.action, Fired: true, Guard: m.flags&flagGuard != 0,
			Rule: f.rule, Code: int(f.code), JournalSeq: f.jseq}
	}
	return out
}

func addr(b [16]byte, is4 bool) netip.Addr {
	a := netip.AddrFrom16(b)
	if is4 {
		a = a.Unmap()
	}
	return a
}

// methodOf and classOf split a STUN message type (RFC 8489 §5: M11..M7 C1
// M6..M4 C0 M3..M0).
func methodOf(t uint16) faults.Method {
	return faults.Method(t&0x000F | (t&0x00E0)>>1 | (t&0x3E00)>>2)
}

func classOf(t uint16) faults.Class {
	return faults.Class((t&0x0010)>>4 | (t&0x0100)>>7)
}

// put copies b into the byte ring and returns its length (0 when b is empty
// or larger than the ring, and not kept): it starts at r.wpos-n. A message
// never wraps: one that does not fit before the ring's end starts again at
// its beginning. The caller holds r.mu.
func (r *Ring) put(b []byte) int {
	if len(b) == 0 || len(b) > len(r.bytes) {
		return 0
	}
	if r.wat+len(b) > len(r.bytes) {
		r.wpos += uint64(len(r.bytes) - r.wat)
		r.wat = 0
	}
	copy(r.bytes[r.wat:], b)
	r.wpos += uint64(len(b))
	r.wat += len(b)
	return len(b)
}

// get appends to dst the bytes at off, or returns nil when they were
// overwritten (or never kept). The caller holds r.mu.
func (r *Ring) get(dst []byte, off uint64, n uint32) []byte {
	size := uint64(len(r.bytes))
	if n == 0 || off+size < r.wpos {
		return nil
	}
	at := off % size
	return append(dst, r.bytes[at:at+uint64(n)]...)
}

// Capturing reports whether the ring keeps the messages' bytes.
func (r *Ring) Capturing() bool { return r != nil && len(r.bytes) > 0 }

// LastSeq returns the Seq of the latest message (0 before any).
func (r *Ring) LastSeq() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Since returns the messages after seq that the ring still holds, oldest
// first, at most limit of them (limit 0 or less: all), each with copies of
// its bytes when withBytes is set. Messages that left the ring while it
// reads are skipped.
func (r *Ring) Since(seq uint64, limit int, withBytes bool) []Record {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.flushRelay()
	r.mu.Unlock()
	var out []Record
	for limit <= 0 || len(out) < limit {
		n := readBatch
		if limit > 0 {
			n = min(n, limit-len(out))
		}
		before := len(out)
		out, seq = r.batch(out, seq, n, withBytes)
		if len(out) == before {
			break
		}
	}
	return out
}

// batch appends up to n records after seq to out under one hold of the lock
// and returns the Seq of the last one appended.
func (r *Ring) batch(out []Record, seq uint64, n int, withBytes bool) ([]Record, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := uint64(len(r.entries))
	first := seq + 1
	if r.seq > size && first <= r.seq-size {
		first = r.seq - size + 1
	}
	copied := 0
	for s := first; s <= r.seq && n > 0 && copied < readBytes; s++ {
		i := int((s - 1) % size)
		m := &r.entries[i]
		rec := Record{Message: r.message(i, s)}
		if withBytes && len(r.bytes) > 0 {
			if m.flags&flagData != 0 {
				rec.Data = r.get(nil, m.dataOff, m.size)
			}
			if m.flags&flagFired != 0 {
				rec.Sent = r.get(nil, r.fired[i].sentOff, r.fired[i].sentLen)
			}
			copied += len(rec.Data) + len(rec.Sent)
		}
		out = append(out, rec)
		seq = s
		n--
	}
	return out, seq
}

// Changed returns a channel that is closed when the next message is
// recorded: a live reader waits on it, then reads Since its last Seq.
func (r *Ring) Changed() <-chan struct{} {
	if r == nil {
		return nil // blocks forever: nothing will be recorded
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return r.wake
}

// Close tells live readers the server is going: Done is closed. The ring
// still records and reads; Close is idempotent.
func (r *Ring) Close() {
	if r != nil {
		r.once.Do(func() { close(r.done) })
	}
}

// Done returns a channel closed by Close (nil for a nil ring).
func (r *Ring) Done() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.done
}
