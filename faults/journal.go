package faults

import (
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
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
	// ratelimit it is the kind of its Then action. A delay the engine's
	// Holder had no room for is "delay_overflow": the message passed at
	// once.
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
	// Leg is "peer" for a datagram between a relayed address (Relay) and
	// a peer (Client), "" on the client leg.
	Leg   string         `json:"leg,omitempty"`
	Relay netip.AddrPort `json:"relay,omitzero"`
	// Step is set on the entry of a timed scenario's step change (Action
	// "step", no rule and no message): the step that became active.
	Step *ScenarioStep `json:"step,omitempty"`
}

// Journal is a bounded record of firings, newest last: when it is full the
// oldest entry goes. It also fans each firing out to subscriptions. It is
// safe for concurrent use.
//
// Recording (on the packet path) never waits on a reader: readers (Query,
// Count, Verify, Len) take no lock. Entries live in fixed-size chunks, each
// slot complete before the sequence number that covers it is published. A
// chunk that falls out of the window is recycled for new entries only when
// no reader holds it (readers register on the chunk and check it is still
// the one they wanted, see acquire); otherwise the writer leaves it to them
// and takes a fresh one. A reader overtaken by the writer skips the entries
// that left the window meanwhile, which is what it would have seen had it
// come a moment later. Writers serialise among themselves on a mutex held
// only to store one entry and offer it to each subscriber without blocking.
type Journal struct {
	mu   sync.Mutex // writers: record, Clear, subscribe, Subscription.Close
	subs []*Subscription

	size   uint64                  // entries kept: the window is the last size
	chunks []atomic.Pointer[chunk] // the chunk of seqs k*chunkSize+1... at chunks[k%len]
	seq    atomic.Uint64           // the latest Seq, stored after its entry
	floor  atomic.Uint64           // Clear dropped every entry up to this Seq
	lost   atomic.Uint64           // events every subscription dropped, see Lost
}

// chunkSize is how many entries one chunk holds.
const chunkSize = 128

// chunk holds the entries with Seq first ... first+chunkSize-1. Its slots
// are written by the journal's writer only while no reader holds the chunk
// under another first, and only past the journal's published seq.
type chunk struct {
	first   atomic.Uint64
	readers atomic.Int32
	entries [chunkSize]Entry
}

func newJournal(size int) *Journal {
	if size == 0 {
		size = DefaultJournalSize
	}
	size = max(size, 0)
	j := &Journal{size: uint64(size)}
	if size > 0 {
		// One chunk more than the window spans, so the chunk being filled
		// never replaces one the window still reads.
		j.chunks = make([]atomic.Pointer[chunk], (size+chunkSize-1)/chunkSize+1)
	}
	return j
}

// record numbers e, stores it and offers it to the subscribers.
func (j *Journal) record(e Entry) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	e.Seq = j.seq.Load() + 1
	if j.size > 0 {
		k := (e.Seq - 1) / chunkSize
		first := k*chunkSize + 1
		slot := &j.chunks[k%uint64(len(j.chunks))]
		c := slot.Load()
		if c == nil || c.first.Load() != first {
			if c != nil {
				// Detach it first: a reader registering from now on sees
				// it gone. One registered before keeps it.
				slot.Store(nil)
				if c.readers.Load() != 0 {
					c = nil
				}
			}
			if c == nil {
				c = new(chunk)
			}
			c.first.Store(first)
			slot.Store(c)
		}
		c.entries[e.Seq-first] = e
	}
	j.seq.Store(e.Seq) // after the entry: a reader that sees Seq finds it whole
	for _, s := range j.subs {
		s.offer(&e)
	}
	return e.Seq
}

// acquire returns chunk k registered for reading, or nil when the journal
// no longer holds it. The caller must release it.
func (j *Journal) acquire(k uint64) *chunk {
	slot := &j.chunks[k%uint64(len(j.chunks))]
	c := slot.Load()
	if c == nil {
		return nil
	}
	c.readers.Add(1)
	// Registered: from here on the writer does not recycle c. Check it was
	// not recycled (or detached) before.
	if slot.Load() != c || c.first.Load() != k*chunkSize+1 {
		c.readers.Add(-1)
		return nil
	}
	return c
}

// window returns the Seqs of the entries held: first ... last (none when
// first > last).
func (j *Journal) window() (first, last uint64) {
	floor := j.floor.Load() // before seq: floor never passes the seq read after it
	last = j.seq.Load()
	first = floor + 1
	if last > j.size {
		first = max(first, last-j.size+1)
	}
	return first, last
}

// each calls f on the entries held, oldest first, until f returns false.
// It takes no lock: entries recorded after it started are not visited, and
// entries that leave the window while it runs may be skipped. f must not
// keep the pointer.
func (j *Journal) each(f func(*Entry) bool) {
	j.scan(false, f)
}

// scan is each, newest first when backward is set.
func (j *Journal) scan(backward bool, f func(*Entry) bool) {
	first, last := j.window()
	if j.size == 0 || first > last {
		return
	}
	var c *chunk
	defer func() {
		if c != nil {
			c.readers.Add(-1)
		}
	}()
	held := ^uint64(0) // the chunk index c was acquired for
	for i := range last - first + 1 {
		s := first + i
		if backward {
			s = last - i
		}
		if k := (s - 1) / chunkSize; k != held {
			if c != nil {
				c.readers.Add(-1)
			}
			c, held = j.acquire(k), k
		}
		if c == nil {
			continue // recycled or cleared: those entries are gone
		}
		if !f(&c.entries[(s-1)%chunkSize]) {
			return
		}
	}
}

// Query returns the entries q selects, oldest first, at most q.Limit of them.
// The entries are copies the caller may keep and modify.
func (j *Journal) Query(q Query) []Entry {
	f := newQueryFilter(q)
	var out []Entry
	j.each(func(e *Entry) bool {
		if f.match(e) {
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
	j.each(func(e *Entry) bool {
		if f.match(e) {
			n++
		}
		return true
	})
	return n
}

// Verify checks that exactly expected entries match q (ignoring q.Limit),
// and on a mismatch finds the near misses: the entries q does not select
// that fail the fewest of its fields (see [Verification]). It reads the
// journal once, copying only the near misses it returns.
func (j *Journal) Verify(q Query, expected int) Verification {
	f := newQueryFilter(q)
	v := Verification{Expected: expected}
	var near []NearMiss // best first: fewest failed fields, then latest
	j.scan(true, func(e *Entry) bool {
		failed := f.failed(e)
		if failed == nil {
			v.Actual++
			return true
		}
		// Insert after every kept one with as few failures (they are
		// later), if that is within the bound.
		i := len(near)
		for i > 0 && len(near[i-1].Failed) > len(failed) {
			i--
		}
		if i < MaxNearMisses {
			c := *e
			c.Labels = maps.Clone(e.Labels)
			near = slices.Insert(near, i, NearMiss{Entry: c, Failed: failed})
			near = near[:min(len(near), MaxNearMisses)]
		}
		return true
	})
	v.Match = v.Actual == v.Expected
	if !v.Match {
		v.NearMisses = near
	}
	return v
}

// Len returns how many entries the journal holds.
func (j *Journal) Len() int {
	first, last := j.window()
	if j.size == 0 || first > last {
		return 0
	}
	return int(last - first + 1)
}

// LastSeq returns the sequence number of the latest firing (0 before any),
// including firings no longer held.
func (j *Journal) LastSeq() uint64 {
	return j.seq.Load()
}

// Clear drops every entry. Sequence numbers keep increasing.
func (j *Journal) Clear() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.floor.Store(j.seq.Load())
	for i := range j.chunks {
		j.chunks[i].Store(nil)
	}
}
