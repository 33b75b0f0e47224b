package server

import (
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/internal/stunerror"
	"github.com/stunfault/stunfault/server/trace"
)

// interceptor is what every wrapped socket shares: the engine that decides
// and what the actions need to act. Safe for concurrent use.
type interceptor struct {
	engine   *faults.Engine
	guard    *relayGuard // asked before the engine; see decide
	auth     *authenticator
	nonces   *nonceSource
	realm    string
	software string
	clock    faults.Clock
	log      *slog.Logger
	delays   *delayQueue    // every pending delayed message of the server
	trace    *trace.Ring    // nil: no trace; see trace.go
	counts   wireCounts     // per-message counters for /metrics; see metrics.go
	allocs   *allocTable    // the live allocations; see allocations.go
	rotation *nonceRotation // see rotate.go
	peers    peerLegs       // the relay sockets' peer-leg counts; see peerstats.go

	delayOverflows atomic.Uint64 // delays passed at once: no room in the budget
	replyErrors    atomic.Uint64 // injected errors that could not be built
	panics         atomic.Uint64 // panics recovered while handling a message
}

// decide is what the interception layer asks about every message: the
// relay guard's refusal when it has one (see relayguard.go), else the
// engine's verdict. A verdict with a nil Action asks for nothing: the
// message passes. A panic on the way is recovered and counted, and the
// message passes untouched (the zero Verdict): one bad rule or message must
// not end pion's read loop, and with it the listener.
func (ic *interceptor) decide(pkt *faults.Packet) (v faults.Verdict) {
	defer func() {
		if r := recover(); r != nil {
			ic.recovered(r, "", pkt)
			v = faults.Verdict{}
		}
	}()
	if pkt.Method() == faults.MethodBinding { // STUN: Method is 0 for anything else
		// The relay guard, the allocation table's and the expiries' checks
		// below are about TURN methods and ChannelData only: a Binding,
		// the most common message, meets the nonce rotation and the rules.
		if ic.rotation.stale(pkt) {
			return faults.Verdict{Kind: faults.Error, Action: staleNonceAction}
		}
		return ic.engine.Decide(pkt)
	}
	if a := ic.guard.refuse(pkt); a != nil {
		return faults.Verdict{Kind: faults.Error, Action: a}
	}
	if ic.allocs.swallowed(pkt) {
		return faults.Verdict{Kind: faults.Drop, Action: swallowAction}
	}
	if ic.allocs.mismatch(pkt) {
		return faults.Verdict{Kind: faults.Error, Action: mismatchAction}
	}
	if e := ic.allocs.expired(pkt); e != notExpired {
		return e.verdict()
	}
	if ic.rotation.stale(pkt) {
		return faults.Verdict{Kind: faults.Error, Action: staleNonceAction}
	}
	return ic.engine.Decide(pkt)
}

// apply runs the effect of m's verdict through pt. It reports false when the
// effect panicked (the panic is logged and counted): the caller then passes
// the message untouched, unless the effect handed something on already.
func (ic *interceptor) apply(pt path, m *message) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ic.recovered(r, m.v.Rule, m.pkt)
			if m.v.Kind == faults.Delay && !m.held {
				ic.delays.unhold(len(m.pkt.Data)) // the room the engine reserved
			}
			ok = false
		}
	}()
	effectOf(m.v.Kind)(pt, m)
	return true
}

// recovered logs and counts a panic recovered while handling pkt. rule is
// the rule that fired, "" when the panic came before one did.
func (ic *interceptor) recovered(r any, rule string, pkt *faults.Packet) {
	ic.panics.Add(1)
	ic.log.Error("panic while handling a message: it passes untouched",
		"rule", rule, "panic", r, "direction", pkt.Dir, "transport", pkt.Transport,
		"client", pkt.Client, "size", len(pkt.Data), "stack", string(debug.Stack()))
}

// appendErrorReply appends to dst the error response a verdict of kind Error
// sends in place of pion's answer to the packet p. It appends nothing when no
// response can be built (the message is not a request: validation rejects
// such rules, so this only guards against malformed input). Callers reuse
// dst, so an injected error allocates nothing once warm.
func (ic *interceptor) appendErrorReply(dst []byte, p *faults.Packet, v faults.Verdict) []byte {
	a := v.Action
	spec := stunerror.Spec{
		Code:      a.Code,
		Reason:    a.Reason,
		Software:  ic.software,
		Realm:     ic.realm,
		Alternate: v.Address,
		Integrity: a.Integrity,
	}
	if user, ok := p.Username(); ok {
		spec.Key = ic.auth.keyFor(string(user))
	}
	if a.Code == 401 || a.Code == 438 {
		n, err := ic.nonces.get()
		if err != nil {
			ic.log.Warn("no pion nonce for an injected error: sending it without NONCE", "code", a.Code, "err", err)
		}
		spec.Nonce = n
	}
	resp, err := stunerror.Append(dst, p.Data, spec)
	if err != nil {
		ic.replyErrors.Add(1)
		ic.log.Debug("cannot build injected error response", "rule", v.Rule, "err", err)
		return dst
	}
	return resp
}

// stats returns the interception layer's counters.
func (ic *interceptor) stats() *control.InterceptStats {
	n, bytes := ic.delays.len()
	return &control.InterceptStats{
		DelaysPending:  n,
		DelayedBytes:   bytes,
		DelayOverflows: ic.delayOverflows.Load(),
		Panics:         ic.panics.Load(),
		ReplyErrors:    ic.replyErrors.Load(),
	}
}
