package server

import (
	"log/slog"
	"sync/atomic"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/internal/mutate"
	"github.com/stunfault/stunfault/server/internal/stunerror"
)

// maxPendingDelays bounds the delayed copies one socket holds at once. A
// delay rule that would exceed it lets the message through undelayed (and
// counts it in DelayOverflows) rather than grow without bound.
const maxPendingDelays = 4096

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

	delayOverflows atomic.Uint64
	replyErrors    atomic.Uint64
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

// mutated returns the bytes a Truncate, Corrupt or MappedAddress verdict
// sends instead of data, always a copy; ok is false when the verdict does
// not apply (a mapped_address on something that is not a Binding success),
// and the original goes through unchanged.
func (ic *interceptor) mutated(data []byte, v faults.Verdict) (out []byte, ok bool) {
	switch v.Kind {
	case faults.Truncate:
		return mutate.Truncate(data, v.Action.Length), true
	case faults.Corrupt:
		return mutate.Corrupt(data, v.Action.Target, v.Action.Count), true
	case faults.MappedAddress:
		b, err := mutate.MappedAddress(data, v.Address)
		if err != nil {
			ic.log.Debug("mapped_address does not apply", "rule", v.Rule, "err", err)
			return nil, false
		}
		return b, true
	}
	return nil, false
}

// copies returns how many extra copies a Duplicate verdict sends.
func copies(v faults.Verdict) int {
	return max(1, v.Action.Copies)
}
