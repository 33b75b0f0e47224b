package faults

import (
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// DefaultJournalSize is how many firings a journal keeps when
// EngineOptions.JournalSize is 0.
const DefaultJournalSize = 10000

// Entry is one firing: a rule decided something other than letting a message
// through untouched (a rule whose action is pass, when it fires, is recorded
// too). Messages no rule fired on are not recorded.
type Entry struct {
	// Seq numbers firings from 1, strictly increasing within an engine.
	Seq uint64 `json:"seq"`
	// Time is when the rule fired, on the engine's Clock.
	Time time.Time `json:"time"`
	// Rule is the ID of the rule that fired.
	Rule string `json:"rule"`
	// Action is the kind of action taken ("error", "drop", ...). For a
	// ratelimit it is the kind of its Then action.
	Action string `json:"action"`
	// Code is the error code of an error action (0 otherwise).
	Code int `json:"code,omitempty"`
	// Method ("binding", ..., "channeldata"), Class ("" for ChannelData),
	// Transport ("udp", "tcp") and Direction ("in", "out") describe the
	// message.
	Method    string `json:"method"`
	Class     string `json:"class,omitempty"`
	Transport string `json:"transport"`
	Direction string `json:"direction"`
	// Client is the client's address (the source of an inbound message, the
	// destination of an outbound one).
	Client netip.AddrPort `json:"src"`
	// Size is the whole message's size in bytes.
	Size int `json:"size"`
	// Labels are the rule's labels. The map is shared: do not modify it.
	Labels map[string]string `json:"labels,omitempty"`
	// Seed is the engine's RNG seed, so a run can be replayed.
	Seed uint64 `json:"seed"`
}

// Query selects journal entries and events. Every field given must hold; the
// zero Query selects everything.
type Query struct {
	// Rule is a rule ID.
	Rule string `json:"rule,omitempty"`
	// Method, Class, Transport and Direction are compared with the Entry's.
	Method    string `json:"method,omitempty"`
	Class     string `json:"class,omitempty"`
	Transport string `json:"transport,omitempty"`
	Direction string `json:"direction,omitempty"`
	// Client is an address with port ("127.0.0.1:5000": that socket), an
	// address ("127.0.0.1": any port) or a prefix ("10.0.0.0/8"). A value
	// that is none of these selects nothing.
	Client string `json:"client,omitempty"`
	// Labels must all be among the rule's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// SinceSeq selects entries with a greater Seq. Subscriptions ignore it.
	SinceSeq uint64 `json:"since_seq,omitempty"`
	// Limit caps how many entries Journal.Query returns (0 = no cap): the
	// oldest matching ones, so a caller can page with SinceSeq. Count and
	// subscriptions ignore it.
	Limit int `json:"limit,omitempty"`
}

// queryFilter is a Query with its client parsed once.
type queryFilter struct {
	q       Query
	hasAddr bool
	addr    netip.AddrPort
	prefix  netip.Prefix
	bad     bool // Client did not parse: nothing matches
}

func newQueryFilter(q Query) queryFilter {
	f := queryFilter{q: q}
	if c := q.Client; c != "" {
		if ap, err := netip.ParseAddrPort(c); err == nil {
			f.hasAddr, f.addr = true, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		} else if strings.Contains(c, "/") {
			p, err := netip.ParsePrefix(c)
			f.prefix, f.bad = p.Masked(), err != nil
		} else if a, err := netip.ParseAddr(c); err == nil {
			f.prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		} else {
			f.bad = true
		}
	}
	return f
}

func (f *queryFilter) match(e *Entry) bool {
	q := &f.q
	switch {
	case f.bad,
		q.Rule != "" && q.Rule != e.Rule,
		q.Method != "" && q.Method != e.Method,
		q.Class != "" && q.Class != e.Class,
		q.Transport != "" && q.Transport != e.Transport,
		q.Direction != "" && q.Direction != e.Direction:
		return false
	}
	client := netip.AddrPortFrom(e.Client.Addr().Unmap(), e.Client.Port())
	if f.hasAddr && client != f.addr {
		return false
	}
	if f.prefix.IsValid() && !f.prefix.Contains(client.Addr()) {
		return false
	}
	return hasLabels(e.Labels, q.Labels)
}

// hasLabels reports whether have holds every pair in want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// Journal is a bounded record of firings, newest last: when it is full the
// oldest entry goes. It also fans each firing out to subscriptions. It is
// safe for concurrent use; recording holds a mutex only long enough to store
// one entry and offer it to each subscriber without blocking.
type Journal struct {
	mu   sync.Mutex
	ring []Entry // grows to size, then wraps
	head int     // index of the oldest entry once the ring is full
	size int
	seq  uint64
	subs []*Subscription
}

func newJournal(size int) *Journal {
	if size == 0 {
		size = DefaultJournalSize
	}
	return &Journal{size: max(size, 0)}
}

// record numbers e, stores it and offers it to the subscribers.
func (j *Journal) record(e Entry) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	e.Seq = j.seq
	switch {
	case j.size == 0:
	case len(j.ring) < j.size:
		j.ring = append(j.ring, e)
	default:
		j.ring[j.head] = e
		j.head = (j.head + 1) % j.size
	}
	for _, s := range j.subs {
		s.offer(&e)
	}
	return e.Seq
}

// each calls f on the entries oldest first until f returns false.
// j.mu must be held.
func (j *Journal) each(f func(*Entry) bool) {
	n := len(j.ring)
	for i := range n {
		if !f(&j.ring[(j.head+i)%n]) {
			return
		}
	}
}

// Query returns the entries q selects, oldest first, at most q.Limit of them.
func (j *Journal) Query(q Query) []Entry {
	f := newQueryFilter(q)
	var out []Entry
	j.mu.Lock()
	defer j.mu.Unlock()
	j.each(func(e *Entry) bool {
		if e.Seq > q.SinceSeq && f.match(e) {
			c := *e
			c.Labels = maps.Clone(e.Labels)
			out = append(out, c)
		}
		return q.Limit <= 0 || len(out) < q.Limit
	})
	return out
}

// Count returns how many entries q selects (ignoring q.Limit).
func (j *Journal) Count(q Query) int {
	f := newQueryFilter(q)
	n := 0
	j.mu.Lock()
	defer j.mu.Unlock()
	j.each(func(e *Entry) bool {
		if e.Seq > q.SinceSeq && f.match(e) {
			n++
		}
		return true
	})
	return n
}

// Len returns how many entries the journal holds.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.ring)
}

// LastSeq returns the sequence number of the latest firing (0 before any),
// including firings no longer held.
func (j *Journal) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

// Clear drops every entry. Sequence numbers keep increasing.
func (j *Journal) Clear() {
	j.mu.Lock()
	defer j.mu.Unlock()
	clear(j.ring)
	j.ring = j.ring[:0]
	j.head = 0
}
