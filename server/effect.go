package server

import (
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/internal/mutate"
)

// A path is where one message goes once the engine has decided on it: one
// implementation per socket side (udpIn, udpOut, tcpIn, tcpOut). Effects act
// through it and never look at the socket, so every action behaves alike on
// every transport and direction it applies to, and the differences a
// transport imposes (a truncated TCP frame ends the stream) live in its
// path.
type path interface {
	// deliver hands b on now in place of the message. b may be the message
	// itself or a part of it; it is not kept.
	deliver(b []byte)
	// repeat hands on n more copies of b after what deliver handed on.
	repeat(b []byte, n int)
	// later hands a copy of b on after d, in room the engine reserved (see
	// delayQueue.Hold), and on at once when the rule behind it is retired
	// first (retired closes). It reports false, and keeps nothing, when the
	// socket is closing.
	later(d time.Duration, b []byte, retired <-chan struct{}) bool
	// reply sends b back to the message's sender in its place (inbound).
	reply(b []byte)
	// close closes the connection the message travels on (TCP).
	close()
}

// A message is one message a rule fired on, as an effect sees it.
type message struct {
	ic      *interceptor
	pkt     *faults.Packet // pkt.Data is the message
	v       faults.Verdict
	scratch *[]byte // reused for an injected error reply; nil: allocate
	held    bool    // a Delay's reserved room was handed to path.later
	// sent is what the effect sent in place of the message's bytes (a
	// reply, a changed copy), for the trace; nil when it sent those bytes
	// unchanged, or nothing.
	sent []byte
}

// An effect applies one action kind to a message, through its path.
type effect func(pt path, m *message)

// effects has the one function per action kind that the server runs for a
// verdict of that kind. A kind missing here passes the message (the
// registry test in effect_test.go makes sure none is missing).
var effects = [faults.NumKinds]effect{
	faults.Pass: func(pt path, m *message) { pt.deliver(m.pkt.Data) },
	faults.Drop: func(path, *message) {},
	faults.Error: func(pt path, m *message) {
		var buf []byte
		if m.scratch != nil {
			buf = (*m.scratch)[:0]
		}
		if buf = m.ic.appendErrorReply(buf, m.pkt, m.v); len(buf) > 0 {
			m.sent = buf
			pt.reply(buf)
		}
		if m.scratch != nil {
			*m.scratch = buf
		}
	},
	faults.Delay: func(pt path, m *message) {
		m.held = true
		if !pt.later(m.v.Delay, m.pkt.Data, m.v.Retired) {
			pt.deliver(m.pkt.Data) // the socket is closing: as if undelayed
		}
	},
	faults.DelayOverflow: func(pt path, m *message) {
		m.ic.delayOverflows.Add(1)
		pt.deliver(m.pkt.Data)
	},
	faults.Duplicate: func(pt path, m *message) {
		pt.deliver(m.pkt.Data)
		pt.repeat(m.pkt.Data, max(1, m.v.Action.Copies))
	},
	faults.Truncate: func(pt path, m *message) {
		m.sent = mutate.Truncate(m.pkt.Data, m.v.Action.Length)
		pt.deliver(m.sent)
	},
	faults.Corrupt: func(pt path, m *message) {
		m.sent = mutate.Corrupt(m.pkt.Data, m.v.Action.Target, m.v.Action.Count)
		pt.deliver(m.sent)
	},
	faults.MappedAddress: func(pt path, m *message) {
		b, err := mutate.MappedAddress(m.pkt.Data, m.v.Address)
		if err != nil {
			m.ic.log.Debug("mapped_address does not apply", "rule", m.v.Rule, "err", err)
			pt.deliver(m.pkt.Data)
			return
		}
		m.sent = b
		pt.deliver(b)
	},
	faults.Close: func(pt path, _ *message) { pt.close() },
}

// effectOf returns the effect of kind k (pass for a kind with none).
func effectOf(k faults.ActionKind) effect {
	if int(k) < len(effects) && effects[k] != nil {
		return effects[k]
	}
	return effects[faults.Pass]
}
