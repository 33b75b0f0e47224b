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
	client, local netip.AddrPort
	transport     faults.Transport
	dir           faults.Direction
	kind          Kind
	typ           uint16 // channel number, or STUN message type
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

// isRelayData reports whether p is relayed media: ChannelData, or a Send
// or Data indication.
func isRelayData(p *faults.Packet) bool {
	if p.IsChannelData() {
		return true
	}
	if !p.IsSTUN() || p.Class() != faults.ClassIndication {
		return false
	}
	m := p.Method()
	return m == faults.MethodSend || m == faults.MethodData
}

// summarize counts one relayed message no rule fired on. The caller holds
// r.mu.
func (r *Ring) summarize(local netip.AddrPort, p *faults.Packet, nanos int64) {
	k := relayKey{client: p.Client, local: local, transport: p.Transport, dir: p.Dir}
	if p.IsChannelData() {
		k.kind, k.typ = ChannelData, uint16(p.Data[0])<<8|uint16(p.Data[1])
	} else {
		k.kind, k.typ = STUN, uint16(p.Data[0])<<8|uint16(p.Data[1])
	}
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
	*m = slot{seq: r.seq, nanos: b.first, transport: k.transport, dir: k.dir, kind: RelaySummary,
		typ: k.typ, size: uint32(min(b.bytes, 1<<32-1)), jseq: b.count}
	if k.kind == ChannelData {
		m.flags |= flagChannel
	}
	r.addrs(m, k.client, k.local)
	b.used = false
}
