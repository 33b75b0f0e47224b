package webhook

import (
	"bytes"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// maxKeptBody is how much of each request body a Record keeps.
const maxKeptBody = 64 << 10

// Record is one request to a webhook.
type Record struct {
	// ID numbers requests in the order the Hub received them, across every
	// webhook; async answers carry it.
	ID uint64
	// Webhook is the webhook's name.
	Webhook string
	// Start is when the request arrived. End is when it was answered (sync)
	// or its pending work finished (async); it is zero while the request is
	// held or its work pending.
	Start, End time.Time
	// Body is the request body, up to its first 64 KiB.
	Body []byte
	// BodyBytes is the whole body's size: the bytes read or, for a body over
	// max_body_bytes, its Content-Length when the client declared a larger
	// one.
	BodyBytes int
	// HeaderBytes is the size of the request header as Go parsed it: for
	// each field, Host included, len(name) + len(value) + 4. Each value of a
	// repeated field counts as a field. Transfer-Encoding is not counted (Go
	// moves it out of the header).
	HeaderBytes int
	// Remote is the client's address (host:port).
	Remote string
	// Status is the status answered: 0 while a sync request is held, and
	// when the client went away before the answer. An async request's
	// Status is 202 from the start.
	Status int
	// Mode is "sync" or "async": the webhook's mode when the request came.
	Mode string
}

// entry is a Record as the Hub keeps it. Its hook's mutex guards it.
type entry struct {
	Record
	held   bool         // sync: counts in Inflight while active
	active int          // index in hook.active; -1 once ended
	timer  faults.Timer // async: ends the pending work
	// memo caches the body patterns tried on Body and their results:
	// Recent runs under a read lock, on every packet a rule asks about,
	// and a body never changes once recorded, so it is scanned once per
	// pattern (see maxBodyMemo).
	memo atomic.Pointer[[]bodyMatch]
}

// maxBodyMemo bounds an entry's memo: the results of the last 64 body
// patterns tried on it (1 KiB per entry at most). A rule set asking more
// distinct body patterns than that about one request has the oldest
// results forgotten, and their patterns scan the body again.
const maxBodyMemo = 64

// bodyMatch is a cached pattern result.
type bodyMatch struct {
	p  *faults.Pattern
	ok bool
}

// headerBytes counts r's header per DESIGN.md: for each field as Go parsed
// it, Host included, len(name) + len(value) + 4 (": " and CRLF).
func headerBytes(r *http.Request) int {
	n := 0
	if r.Host != "" {
		n += len("Host") + len(r.Host) + 4
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v) + 4
		}
	}
	return n
}

// matches reports whether the request matches q's body and size conditions.
func (e *entry) matches(body *faults.Pattern, minBody, minHeader int) bool {
	if e.BodyBytes < minBody || e.HeaderBytes < minHeader {
		return false
	}
	if body == nil {
		return true
	}
	memo := e.memo.Load()
	if memo != nil {
		for i := len(*memo) - 1; i >= 0; i-- {
			if m := (*memo)[i]; m.p == body {
				return m.ok
			}
		}
	}
	ok := body.Match(e.Body)
	for {
		var old []bodyMatch
		if memo != nil {
			old = *memo
		}
		if len(old) == maxBodyMemo {
			old = old[1:]
		}
		next := make([]bodyMatch, len(old), len(old)+1)
		copy(next, old)
		next = append(next, bodyMatch{p: body, ok: ok})
		if e.memo.CompareAndSwap(memo, &next) {
			return ok
		}
		// Another reader added a result meanwhile: keep it too.
		if memo = e.memo.Load(); memo != nil && slices.ContainsFunc(*memo, func(m bodyMatch) bool { return m.p == body }) {
			return ok
		}
	}
}

// clone returns a copy of the record that shares nothing with the Hub.
func (e *entry) clone() Record {
	r := e.Record
	r.Body = bytes.Clone(e.Body)
	return r
}

// ring is a bounded FIFO of entries: the newest n are kept.
type ring struct {
	buf  []*entry
	next int // where the next entry goes
	full bool
}

func newRing(n int) ring { return ring{buf: make([]*entry, n)} }

func (r *ring) push(e *entry) {
	r.buf[r.next] = e
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}

// at returns the i-th newest entry (0 = newest).
func (r *ring) at(i int) *entry {
	j := r.next - 1 - i
	if j < 0 {
		j += len(r.buf)
	}
	return r.buf[j]
}
