package trace

import (
	"net/netip"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// relayBuckets is how many relay summaries are counted at once; a message
// whose bucket holds another allocation's count ends that count early.
const relayBuckets = 64

// relayKey is what one summary counts: one allocation's relayed data in
// one direction, of one kind (a channel's ChannelData, or Send or Data
// indications).
type relayKey struct {
	client    netip.AddrPort
	local     Local
	transport faults.Transport
	dir       faults.Direction
	kind      Kind
	typ       uint16 // channel number, or STUN message type
}

// bucket counts the messages of one relayKey within one second.
type bucket struct {
	used  bool
	key   relayKey
	sec   int64 // nanos / 1e9
	first int64 // nanos of the first message counted
	count uint64
	bytes uint64
}

// summarize counts one relayed message no rule fired on: p, whose header
// is of kind and typ. The caller holds r.mu.
func (r *Ring) summarize(local Local, p *faults.Packet, kind Kind, typ uint16, nanos int64) {
	k := relayKey{client: p.Client, local: local, transport: p.Transport, dir: p.Dir, kind: kind, typ: typ}
	sec := nanos / int64(time.Second)
	b := &r.relay[(uint(p.Client.Port())*31+uint(k.typ)*7+uint(p.Dir))%relayBuckets]
	if b.used && (b.key != k || b.sec != sec) {
		r.emit(b)
	}
	if !b.used {
		*b = bucket{used: true, key: k, sec: sec, first: nanos}
	}
	b.count++
	b.bytes += uint64(len(p.Data))
}

// flushRelay records every summary being counted, so a reader sees the
// relayed data up to now (a count goes on in a new summary). The caller
// holds r.mu.
func (r *Ring) flushRelay() {
	for i := range r.relay {
		if b := &r.relay[i]; b.used {
			r.emit(b)
		}
	}
}

// emit records b's count as one message of kind RelaySummary and empties
// b. The caller holds r.mu.
func (r *Ring) emit(b *bucket) {
	m := r.slot()
	k := &b.key
	*m = slot{nanos: b.first, transport: k.transport, dir: k.dir, kind: RelaySummary,
		typ: k.typ, size: uint32(min(b.bytes, 1<<32-1)), dataOff: b.count, local: k.local}
	m.client, m.cport, m.flags = clientOf(k.client)
	if k.kind == ChannelData {
		m.flags |= flagChannel
	}
	b.used = false
}
