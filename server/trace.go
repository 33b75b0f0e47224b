package server

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/trace"
)

// maxTracePage bounds the messages one GET /trace answers with.
const maxTracePage = 10000

// record counts one message and the verdict the interception acted on (for
// /metrics) and puts them into the trace at the time at (0: now), with the
// socket's local address and what it sent instead of the message's bytes (a
// reply or a changed copy, as the action's effect built it; nil for none):
// one call per message and direction. Nothing is allocated.
func (ic *interceptor) record(at trace.Stamp, local trace.Local, p *faults.Packet, v *faults.Verdict, sent []byte) {
	ic.counts.count(p, v)
	ic.trace.Record(at, local, p, v, sent)
}

// readTrace is what a socket's read loop keeps for the trace: the time of
// the read it handles, and a passed message it read whose record waits for
// pion's answer.
//
// The messages of one read from the socket (a recvmmsg batch, a TCP read)
// and the answers pion writes to them share one clock read, the read's
// stamp. It is 0 (read the clock) while the reader waits for the next read,
// so a write then is stamped when it happens. A passed request the reader
// read is recorded with pion's answer to it, under one hold of the trace's
// lock, or when pion asks for the next message (flush), whichever comes
// first: the trace holds it before its answer leaves.
//
// Only pion's read loop of the socket touches it, without a lock or an
// atomic: the reader, and writes of STUN responses, which pion makes from
// that loop (relay goroutines write only indications and ChannelData;
// udpBatch.answer relies on the same). The race detector would report a
// response written from anywhere else.
type readTrace struct {
	at      trace.Stamp
	pending *faults.Packet // a passed request; nil: none
	pendAt  trace.Stamp
}

// passed is the verdict of a message nothing acted on.
var passed faults.Verdict

// read stamps a read that just returned, when there is a trace.
func (t *readTrace) read(r *trace.Ring) {
	if r != nil {
		t.at = r.Now()
	}
}

// wait clears the stamp before the reader may block.
func (t *readTrace) wait() { t.at = 0 }

// get returns the stamp (0: none), for a message the reader read.
func (t *readTrace) get() trace.Stamp { return t.at }

// isAnswer reports whether p, a message written to the client, is a STUN
// response: pion's answer from its read loop to a message of the read
// being handled. Anything else is written by a relay goroutine.
func isAnswer(p []byte) bool { return len(p) > 0 && p[0]&0xC1 == 0x01 }

// answerStamp returns the stamp for p, a message written to the client:
// the read's for an answer, 0 (now) for anything else.
func (t *readTrace) answerStamp(p []byte) trace.Stamp {
	if isAnswer(p) {
		return t.at
	}
	return 0
}

// in counts and records p, a message the reader read and passed on (v).
// A STUN request's record is left to answer or flush (p stays valid until
// then); anything else is recorded now, since nothing answers it.
func (t *readTrace) in(ic *interceptor, local trace.Local, p *faults.Packet, v *faults.Verdict) {
	t.flush(ic, local)
	if ic.trace == nil || !p.IsSTUN() || p.Class() != faults.ClassRequest {
		ic.record(t.at, local, p, v, nil)
		return
	}
	ic.counts.count(p, v)
	t.pending, t.pendAt = p, t.at
}

// flush records the message left pending, if any.
func (t *readTrace) flush(ic *interceptor, local trace.Local) {
	if t.pending != nil {
		ic.trace.Record(t.pendAt, local, t.pending, &passed, nil)
		t.pending = nil
	}
}

// answer counts and records p, a STUN response pion wrote from its read
// loop, with the message left pending, at the read's stamp.
func (t *readTrace) answer(ic *interceptor, local trace.Local, p *faults.Packet, v *faults.Verdict, sent []byte) {
	ic.counts.count(p, v)
	if t.pending == nil {
		ic.trace.Record(t.at, local, p, v, sent)
		return
	}
	ic.trace.RecordPair(t.pendAt, local, t.pending, &passed, nil, p, v, sent)
	t.pending = nil
}

// Trace returns the record of every message the server saw (nil when
// [server].trace_size is 0): read it with Since, wait on Changed. A
// capture (GET /capture.pcapng) is written from it.
func (s *Server) Trace() *trace.Ring { return s.ic.trace }

// TraceSince returns the messages after seq the trace still holds (at most
// limit; 0 or less: all), oldest first, with the listener each came to, and
// the webhook requests of the same period: held, pending, or ended since
// the first message returned, and each open relay's peer-leg counts. This
// is what GET /trace answers.
func (s *Server) TraceSince(seq uint64, limit int) trace.Page {
	ring := s.Trace()
	page := trace.Page{Messages: ring.Since(seq, limit, false), Size: ring.Size(),
		Time: s.clk.Now(), PeerLegs: s.ic.peers.relays()}
	page.LastSeq = ring.LastSeq()
	if n := len(page.Messages); n > 0 {
		page.LastSeq = max(page.LastSeq, page.Messages[n-1].Seq)
	}
	ls := s.Listeners()
	for i := range page.Messages {
		page.Messages[i].Listener = listenerName(ls, &page.Messages[i].Message)
	}
	var from time.Time
	if len(page.Messages) > 0 {
		from = page.Messages[0].Time
	}
	page.Webhooks = s.spans(from, page.Messages)
	return page
}

// listenerName names the listener m came to: the one with its transport
// and port (a TCP connection's local address may be a wildcard listener's
// concrete one).
func listenerName(ls []Listener, m *trace.Message) string {
	for _, l := range ls {
		if l.Addr.Port() != m.Local.Port() || (l.Transport == "udp") != (m.Transport == faults.UDP) {
			continue
		}
		return l.Transport + " " + l.Addr.String()
	}
	return ""
}

// spans returns the webhook requests held or pending now, or that ended at
// or after from, by ID, each with the rules among msgs it made fire.
func (s *Server) spans(from time.Time, msgs []trace.Record) []trace.Span {
	var out []trace.Span
	for _, name := range s.hub.Names() {
		for _, r := range s.hub.Spans(name) {
			if !r.End.IsZero() && r.End.Before(from) {
				continue
			}
			sp := trace.Span{
				ID: r.ID, Webhook: r.Webhook, Start: r.Start, End: r.End, Mode: r.Mode,
				Status: r.Status, BodyBytes: r.BodyBytes, HeaderBytes: r.HeaderBytes,
			}
			if r.End.IsZero() {
				sp.Held, sp.Pending = r.Mode != "async", r.Mode == "async"
			}
			sp.Rules = s.spanRules(&sp, msgs)
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b trace.Span) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// spanRules returns the rules matching on sp's webhook that fired on a
// message of msgs while sp was in progress (or within the rule's window
// after it ended).
func (s *Server) spanRules(sp *trace.Span, msgs []trace.Record) []string {
	var out []string
	for i := range msgs {
		d := &msgs[i].Decision
		if d.Rule == "" || msgs[i].Time.Before(sp.Start) {
			continue
		}
		st, err := s.eng.Get(d.Rule)
		w := st.Rule.Match.Webhook
		if err != nil || w == nil || (w.Name != "" && w.Name != sp.Webhook) {
			continue
		}
		if !sp.End.IsZero() && msgs[i].Time.After(sp.End.Add(w.Window.D())) {
			continue
		}
		if !slices.Contains(out, d.Rule) {
			out = append(out, d.Rule)
		}
	}
	return out
}

// handleTrace answers GET /trace?since=SEQ&limit=N&follow=1 with a
// trace.Page. With follow=1 the reader says SEQ is the last seq it saw (the
// dashboard polling): the messages the ring overwrote since count as lost
// on /metrics.
func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := queryUint(q.Get("since"))
	if err != nil {
		http.Error(w, "since: want a non-negative integer (a trace seq)", http.StatusBadRequest)
		return
	}
	limit, err := queryUint(q.Get("limit"))
	if err != nil || limit > maxTracePage {
		http.Error(w, "limit: want an integer from 0 to "+strconv.Itoa(maxTracePage), http.StatusBadRequest)
		return
	}
	if limit == 0 {
		limit = maxTracePage
	}
	follow := q.Get("follow")
	if follow != "" && follow != "0" && follow != "1" {
		http.Error(w, "follow: want 1 (since is the last seq this reader saw) or 0", http.StatusBadRequest)
		return
	}
	page := s.TraceSince(since, int(limit))
	if follow == "1" { // a gap is what the ring overwrote before this reader asked again
		for i := range page.Messages {
			s.traceLost.Add(page.Messages[i].Seq - since - 1)
			since = page.Messages[i].Seq
		}
	}
	writeJSON(w, http.StatusOK, page)
}

// queryUint parses an optional non-negative integer query parameter.
func queryUint(v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	return strconv.ParseUint(v, 10, 64)
}
