package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/internal/pcapng"
	"github.com/stunfault/stunfault/server/trace"
)

// Bounds of a capture (GET /capture.pcapng, stunfault capture).
const (
	// MaxCaptureDuration is the longest live capture.
	MaxCaptureDuration = 10 * time.Minute
	// MaxCapturePackets is the most messages one capture writes.
	MaxCapturePackets = 1_000_000
)

// CaptureOptions select what a capture writes.
type CaptureOptions struct {
	// Duration, when not 0, makes the capture live: it writes the messages
	// recorded from now on, for this long (at most MaxCaptureDuration).
	// When 0 it writes the messages the trace holds now.
	Duration time.Duration
	// Count stops the capture after this many messages (0: no limit but
	// MaxCapturePackets).
	Count int
	// Query selects the messages as journal queries select firings (rule,
	// method, class, transport, direction, client, labels); messages no
	// rule fired on have no rule and no labels. SinceSeq is a trace Seq.
	Query faults.Query
}

// WriteCapture writes what the server saw as a pcapng file to w: each
// message framed in synthetic IPv4 or IPv6 and UDP or TCP headers with the
// real addresses and ports (TCP with sequence numbers consistent per
// connection and direction, so Wireshark reassembles the stream), and the
// decision in each packet's comment. For a message stunfault changed or
// answered itself, both the bytes received and the bytes sent are written.
// A live capture ends at opts.Duration, at opts.Count, when ctx ends, or
// when the server closes.
func (s *Server) WriteCapture(ctx context.Context, w io.Writer, opts CaptureOptions) error {
	ring := s.Trace()
	if ring == nil {
		return errors.New("server: capture: the trace is off ([server] trace_size = 0)")
	}
	if !ring.Capturing() {
		return errors.New("server: capture: no bytes are kept ([server] capture_bytes = 0)")
	}
	if opts.Duration < 0 || opts.Duration > MaxCaptureDuration {
		return fmt.Errorf("server: capture: duration %v: want 0 to %v", opts.Duration, MaxCaptureDuration)
	}
	if opts.Count < 0 || opts.Count > MaxCapturePackets {
		return fmt.Errorf("server: capture: count %d: want 0 to %d", opts.Count, MaxCapturePackets)
	}
	if err := opts.Query.Validate(); err != nil {
		return fmt.Errorf("server: capture: %w", err)
	}
	limit := opts.Count
	if limit == 0 {
		limit = MaxCapturePackets
	}
	pw, err := pcapng.NewWriter(w, "stunfault "+BuildVersion().Version)
	if err != nil {
		return err
	}
	cw := &captureWriter{s: s, pw: pw, sel: opts.Query.Selects(), streams: map[tcpKey]*tcpStream{}, labels: map[string]map[string]string{}}
	flush := func() error {
		if err := pw.Flush(); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	}
	since := opts.Query.SinceSeq
	if opts.Duration == 0 {
		for _, rec := range ring.Since(since, 0, true) {
			if cw.n >= limit {
				break
			}
			if err := cw.write(&rec); err != nil {
				return err
			}
		}
		return flush()
	}
	since = max(since, ring.LastSeq())
	if err := flush(); err != nil { // the headers: the reader knows it started
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	for cw.n < limit {
		changed := ring.Changed()
		recs := ring.Since(since, limit-cw.n, true)
		for i := range recs {
			// A gap in the seqs: the trace overwrote those messages before
			// the capture read them (whether the query selected them or not).
			s.captureLost.Add(recs[i].Seq - since - 1)
			if err := cw.write(&recs[i]); err != nil {
				return err
			}
			since = recs[i].Seq
		}
		s.captureLost.Add(cw.noBytes)
		cw.noBytes = 0
		if len(recs) > 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-ring.Done(): // the server is closing
			return flush()
		}
	}
	return nil
}

// captureWriter frames trace records as packets.
type captureWriter struct {
	s       *Server
	pw      *pcapng.Writer
	sel     func(*faults.Entry) bool
	streams map[tcpKey]*tcpStream
	labels  map[string]map[string]string // rule labels, looked up once per rule
	n       int                          // messages written
	noBytes uint64                       // selected messages whose bytes were gone
	buf     []byte
}

// tcpKey is one TCP connection: the client and the server's end.
type tcpKey struct{ client, local netip.AddrPort }

// tcpStream holds the next sequence number of each direction of one
// connection. Both start at 1 when a capture first sees the connection.
type tcpStream struct{ in, out uint32 }

// write writes one record (when the query selects it): the message, and for
// a message stunfault changed or answered, the bytes it sent. On TCP both
// copies of a changed message go on the connection's stream one after the
// other, sequence numbers going on from one to the next, so the stream
// stays whole for Wireshark's reassembly (its bytes are then the client's
// and pion's side of the change in turn, as the comments say).
func (cw *captureWriter) write(rec *trace.Record) error {
	if rec.Kind == trace.RelaySummary || !cw.sel(cw.entry(rec)) {
		return nil // summaries of relayed data have no bytes to write
	}
	cw.n++
	d := &rec.Decision
	data := rec.Data
	if data == nil {
		cw.noBytes++
		return nil // its bytes left the byte ring before the capture read them
	}
	what := cw.decision(rec)
	switch {
	case rec.Sent == nil:
		return cw.packet(rec, rec.Dir, data, what)
	case d.Action == faults.Error:
		// The request as received, then the error response stunfault sent
		// in place of pion's answer.
		if err := cw.packet(rec, faults.In, data, what); err != nil {
			return err
		}
		return cw.packet(rec, faults.Out, rec.Sent, fmt.Sprintf("trace #%d: the error response stunfault sent: %s", rec.Seq, cw.ruleText(rec)))
	case rec.Dir == faults.In:
		// On the wire: what the client sent. Then what pion was handed.
		if err := cw.packet(rec, faults.In, data, what+"; as the client sent it"); err != nil {
			return err
		}
		return cw.packet(rec, faults.In, rec.Sent, fmt.Sprintf("trace #%d: as pion got it after %s", rec.Seq, cw.ruleText(rec)))
	default:
		// What pion wrote, then what went on the wire to the client.
		if err := cw.packet(rec, faults.Out, data, what+"; as pion wrote it"); err != nil {
			return err
		}
		return cw.packet(rec, faults.Out, rec.Sent, fmt.Sprintf("trace #%d: as the client got it after %s", rec.Seq, cw.ruleText(rec)))
	}
}

// packet writes b as one message of rec's connection going dir.
func (cw *captureWriter) packet(rec *trace.Record, dir faults.Direction, b []byte, comment string) error {
	src, dst := ends(rec, dir)
	if rec.Transport == faults.UDP {
		cw.buf = pcapng.AppendUDP(cw.buf[:0], src, dst, b)
		return cw.pw.WritePacket(rec.Time, cw.buf, comment)
	}
	k := tcpKey{rec.Client, rec.Local}
	st := cw.streams[k]
	if st == nil {
		st = &tcpStream{in: 1, out: 1}
		cw.streams[k] = st
	}
	seq, ack := &st.in, st.out
	if dir == faults.Out {
		seq, ack = &st.out, st.in
	}
	for len(b) > 0 {
		n := min(len(b), pcapng.MaxTCPSegment)
		cw.buf = pcapng.AppendTCP(cw.buf[:0], src, dst, *seq, ack, b[:n])
		if err := cw.pw.WritePacket(rec.Time, cw.buf, comment); err != nil {
			return err
		}
		*seq += uint32(n)
		b = b[n:]
	}
	return nil
}

// ends returns the source and destination of rec's message going dir.
func ends(rec *trace.Record, dir faults.Direction) (src, dst netip.AddrPort) {
	if dir == faults.In {
		return rec.Client, rec.Local
	}
	return rec.Local, rec.Client
}

// decision is a packet's comment: its trace seq and what was decided.
func (cw *captureWriter) decision(rec *trace.Record) string {
	if !rec.Decision.Fired {
		return fmt.Sprintf("trace #%d: passed", rec.Seq)
	}
	return fmt.Sprintf("trace #%d: %s", rec.Seq, cw.ruleText(rec))
}

// ruleText says which rule fired with which action, code, journal seq and
// seed ("rule screenpop-403: error 403, journal #5, seed 42").
func (cw *captureWriter) ruleText(rec *trace.Record) string {
	d := &rec.Decision
	act := d.Action.String()
	if d.Code != 0 {
		act += " " + strconv.Itoa(d.Code)
	}
	if d.Guard {
		return "stunfault's relay guard: " + act
	}
	return fmt.Sprintf("rule %s: %s, journal #%d, seed %d", d.Rule, act, d.JournalSeq, cw.s.seed)
}

// entry returns rec as the journal entry the query is checked against.
func (cw *captureWriter) entry(rec *trace.Record) *faults.Entry {
	e := &faults.Entry{
		Rule: rec.Decision.Rule, Method: methodName(rec), Transport: rec.Transport.String(),
		Direction: rec.Dir.String(), Client: rec.Client, Size: rec.Size, Code: rec.Decision.Code,
	}
	if rec.Kind == trace.STUN {
		e.Class = rec.Class.String()
	}
	if rec.Decision.Fired {
		e.Action = rec.Decision.Action.String()
	}
	if id := rec.Decision.Rule; id != "" {
		l, ok := cw.labels[id]
		if !ok {
			if st, err := cw.s.eng.Get(id); err == nil {
				l = st.Rule.Labels
			}
			cw.labels[id] = l
		}
		e.Labels = l
	}
	return e
}

func methodName(rec *trace.Record) string {
	switch rec.Kind {
	case trace.STUN:
		return rec.Method.String()
	case trace.ChannelData:
		return "channeldata"
	}
	return ""
}

// handleCapture answers GET /capture.pcapng?d=DURATION&n=COUNT with a
// capture (see WriteCapture), filtered by the journal's query parameters
// (rule, method, class, transport, direction, client, label=K=V, since).
func (s *Server) handleCapture(w http.ResponseWriter, r *http.Request) {
	opts, err := captureOptions(r)
	if err == nil && (s.Trace() == nil || !s.Trace().Capturing()) {
		err = errors.New("the trace or its bytes are off ([server] trace_size, capture_bytes)")
	}
	if err == nil {
		err = opts.Query.Validate()
	}
	if err != nil {
		http.Error(w, "capture: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-pcapng")
	w.Header().Set("Content-Disposition", `attachment; filename="stunfault.pcapng"`)
	if err := s.WriteCapture(r.Context(), w, opts); err != nil {
		s.log.Debug("capture ended", "err", err)
	}
}

// captureOptions reads the query string of GET /capture.pcapng.
func captureOptions(r *http.Request) (CaptureOptions, error) {
	v := r.URL.Query()
	var opts CaptureOptions
	if d := v.Get("d"); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 || dur > MaxCaptureDuration {
			return opts, fmt.Errorf("d=%q: want a duration from 0 to %v, such as 30s", d, MaxCaptureDuration)
		}
		opts.Duration = dur
	}
	if n := v.Get("n"); n != "" {
		c, err := strconv.Atoi(n)
		if err != nil || c < 0 || c > MaxCapturePackets {
			return opts, fmt.Errorf("n=%q: want a count from 0 to %d", n, MaxCapturePackets)
		}
		opts.Count = c
	}
	since, err := queryUint(v.Get("since"))
	if err != nil {
		return opts, fmt.Errorf("since=%q: want a trace seq", v.Get("since"))
	}
	q := faults.Query{
		Rule: v.Get("rule"), Method: v.Get("method"), Class: v.Get("class"), Transport: v.Get("transport"),
		Direction: v.Get("direction"), Client: v.Get("client"), SinceSeq: since,
	}
	for _, l := range v["label"] {
		k, val, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return opts, fmt.Errorf("label=%q: want KEY=VALUE", l)
		}
		if q.Labels == nil {
			q.Labels = map[string]string{}
		}
		q.Labels[k] = val
	}
	opts.Query = q
	return opts, nil
}
