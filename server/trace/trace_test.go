package trace

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// BenchmarkRecord measures recording one pass-through Binding request.
func BenchmarkRecord(b *testing.B) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	client := netip.MustParseAddrPort("127.0.0.1:50000")
	for _, bytes := range []int{0, DefaultCaptureBytes} {
		r := New(Options{Size: DefaultSize, CaptureBytes: bytes})
		local := r.Local(netip.MustParseAddrPort("127.0.0.1:3478"))
		b.Run(map[bool]string{false: "bytes=off", true: "bytes=on"}[bytes > 0], func(b *testing.B) {
			b.ReportAllocs()
			var v faults.Verdict
			for b.Loop() {
				p := faults.Packet{Data: req, Dir: faults.In, Transport: faults.UDP, Client: client}
				r.Record(0, local, &p, &v, nil)
			}
		})
	}
}

func binding(t testing.TB, user string) []byte {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest}
	if user != "" {
		setters = append(setters, stun.NewUsername(user))
	}
	return stun.MustBuild(append(setters, stun.Fingerprint)...).Raw
}

func record(r *Ring, data []byte, dir faults.Direction, v faults.Verdict, sent []byte) uint64 {
	p := faults.Packet{Data: data, Dir: dir, Transport: faults.UDP, Client: netip.MustParseAddrPort("127.0.0.1:50000")}
	return r.Record(0, r.Local(netip.MustParseAddrPort("127.0.0.1:3478")), &p, &v, sent)
}

func TestRingKeepsTheNewest(t *testing.T) {
	r := New(Options{Size: 3, CaptureBytes: 1 << 10})
	for i := range 5 {
		if got := record(r, binding(t, ""), faults.In, faults.Verdict{}, nil); got != uint64(i+1) {
			t.Fatalf("seq: got %d, want %d", got, i+1)
		}
	}
	recs := r.Since(0, 0, true)
	var seqs []uint64
	for _, rec := range recs {
		seqs = append(seqs, rec.Seq)
		if len(rec.Data) != rec.Size {
			t.Errorf("seq %d: %d bytes kept, want %d", rec.Seq, len(rec.Data), rec.Size)
		}
	}
	if fmt.Sprint(seqs) != "[3 4 5]" {
		t.Fatalf("seqs: got %v, want [3 4 5]", seqs)
	}
	if got := r.Since(4, 0, false); len(got) != 1 || got[0].Seq != 5 || got[0].Data != nil {
		t.Fatalf("Since(4) without bytes: got %+v, want seq 5 alone, no bytes", got)
	}
	if got := r.Since(0, 2, false); len(got) != 2 || got[1].Seq != 4 {
		t.Fatalf("Since(0, limit 2): got %d records, want seqs 3 and 4", len(got))
	}
	if got := r.Since(5, 0, false); len(got) != 0 {
		t.Fatalf("Since(LastSeq): got %d records, want none", len(got))
	}
}

func TestRingFields(t *testing.T) {
	r := New(Options{Size: 8, CaptureBytes: 1 << 10})
	req := binding(t, "alice")
	var m stun.Message
	m.Raw = append([]byte(nil), req...)
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	act := &faults.Action{Type: "error", Code: 403}
	record(r, req, faults.In, faults.Verdict{Kind: faults.Error, Rule: "r403", Seq: 7, Action: act}, []byte("reply"))
	record(r, req, faults.Out, faults.Verdict{Kind: faults.Error, Action: act}, nil)
	recs := r.Since(0, 0, true)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	got := recs[0]
	if got.Kind != STUN || got.Method != faults.MethodBinding || got.Class != faults.ClassRequest ||
		got.TxID != m.TransactionID || got.Username != "alice" || got.Size != len(req) || got.Dir != faults.In {
		t.Errorf("header fields: got %+v", got.Message)
	}
	want := Decision{Action: faults.Error, Fired: true, Rule: "r403", Code: 403, JournalSeq: 7}
	if got.Decision != want {
		t.Errorf("decision: got %+v, want %+v", got.Decision, want)
	}
	if string(got.Sent) != "reply" || string(got.Data) != string(req) {
		t.Errorf("bytes: got data %d bytes, sent %q", len(got.Data), got.Sent)
	}
	if d := recs[1].Decision; !d.Guard || !d.Fired || d.Rule != "" {
		t.Errorf("a verdict without a rule is the guard's: got %+v", d)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"method":"binding"`, `"class":"request"`, `"direction":"in"`, `"username":"alice"`,
		`"action":"error"`, `"rule":"r403"`, `"code":403`, `"journal_seq":7`, `"client":"127.0.0.1:50000"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON %s lacks %s", b, s)
		}
	}
}

func TestRingBytesOverwritten(t *testing.T) {
	req := binding(t, "")
	// Room for two messages' bytes: the third overwrites the first.
	r := New(Options{Size: 8, CaptureBytes: 2*len(req) + len(req)/2})
	for range 3 {
		record(r, req, faults.In, faults.Verdict{}, nil)
	}
	recs := r.Since(0, 0, true)
	if recs[0].Data != nil || recs[1].Data == nil || recs[2].Data == nil {
		t.Fatalf("bytes kept: got %v %v %v, want only the last two", recs[0].Data != nil, recs[1].Data != nil, recs[2].Data != nil)
	}
	big := make([]byte, 4*len(req))
	record(r, big, faults.In, faults.Verdict{}, nil)
	if got := r.Since(3, 0, true); len(got) != 1 || got[0].Data != nil || got[0].Size != len(big) {
		t.Fatalf("a message larger than the byte ring: got %+v, want recorded without bytes", got)
	}
}

func TestRingOff(t *testing.T) {
	var r *Ring = New(Options{Size: 0})
	if r != nil {
		t.Fatal("size 0: want a nil ring")
	}
	if got := record(r, binding(t, ""), faults.In, faults.Verdict{}, nil); got != 0 || r.Since(0, 0, true) != nil || r.LastSeq() != 0 {
		t.Fatal("a nil ring records nothing and reads empty")
	}
}

func TestRingChanged(t *testing.T) {
	r := New(Options{Size: 4})
	ch := r.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any record")
	default:
	}
	record(r, binding(t, ""), faults.In, faults.Verdict{}, nil)
	<-ch // closed by the record
}

func TestRecordAllocatesNothing(t *testing.T) {
	r := New(Options{Size: 16, CaptureBytes: 1 << 12})
	req := binding(t, "alice")
	if n := testing.AllocsPerRun(100, func() { record(r, req, faults.In, faults.Verdict{}, nil) }); n != 0 {
		t.Fatalf("allocations per record: got %v, want 0", n)
	}
}

func TestSlotSizes(t *testing.T) {
	if n := unsafe.Sizeof(slot{}); n != 64 {
		t.Fatalf("slot: got %d bytes, want 64 (one cache line)", n)
	}
	if n := unsafe.Sizeof(fired{}); n != 40 {
		t.Fatalf("fired: got %d bytes, want 40", n)
	}
}

// Writers on several goroutines and a reader at once: every Seq is read at
// most once, in order, and the race detector has nothing to say.
func TestRingConcurrent(t *testing.T) {
	r := New(Options{Size: 64, CaptureBytes: 1 << 10})
	req := binding(t, "bob")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				record(r, req, faults.In, faults.Verdict{}, nil)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var last uint64
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		for _, rec := range r.Since(last, 0, true) {
			if rec.Seq <= last || (rec.Data != nil && len(rec.Data) != len(req)) || rec.Username != "bob" {
				t.Fatalf("read seq %d after %d (%d bytes, user %q)", rec.Seq, last, len(rec.Data), rec.Username)
			}
			last = rec.Seq
		}
	}
	if got := r.LastSeq(); got != 2000 {
		t.Fatalf("LastSeq: got %d, want 2000", got)
	}
}

func channelData(ch uint16, payload string) []byte {
	b := []byte{byte(ch >> 8), byte(ch), 0, byte(len(payload))}
	return append(b, payload...)
}

// Relayed data no rule fired on is counted per allocation, direction and
// second, not kept one by one; a firing on it is kept as itself.
func TestRingSummarizesRelayData(t *testing.T) {
	clk := faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r := New(Options{Size: 64, CaptureBytes: 1 << 12, Clock: clk})
	for range 5 {
		if seq := record(r, channelData(0x4000, "media"), faults.In, faults.Verdict{}, nil); seq != 0 {
			t.Fatalf("relayed data got seq %d, want 0 (summarised)", seq)
		}
	}
	fired := record(r, channelData(0x4000, "media"), faults.In, faults.Verdict{Kind: faults.Drop, Rule: "lossy", Seq: 1, Action: &faults.Action{Type: "drop"}}, nil)
	if fired != 1 {
		t.Fatalf("a firing on relayed data: got seq %d, want 1 (kept as itself)", fired)
	}
	record(r, channelData(0x4000, "media"), faults.Out, faults.Verdict{}, nil) // another direction: its own count
	clk.Advance(time.Second)
	record(r, channelData(0x4000, "next"), faults.In, faults.Verdict{}, nil) // a new second ends the first count

	recs := r.Since(0, 0, true) // reading ends every count
	var sums []Record
	for _, rec := range recs {
		if rec.Kind == RelaySummary {
			sums = append(sums, rec)
		}
	}
	if len(recs) != 4 || len(sums) != 3 || sums[1].Dir != faults.In || sums[1].Count != 1 || sums[1].Size != 8 {
		t.Fatalf("got %d records, %d summaries, want the firing and three summaries (two seconds in, one out): %+v", len(recs), len(sums), recs)
	}
	in := sums[0]
	if in.Dir != faults.In || in.Count != 5 || in.Size != 5*9 || in.Channel != 0x4000 || in.Data != nil || !in.Time.Equal(clk.Now().Add(-time.Second)) {
		t.Errorf("inbound summary: got %+v, want 5 messages of 9 bytes on channel 0x4000", in)
	}
	if out := sums[2]; out.Dir != faults.Out || out.Count != 1 {
		t.Errorf("outbound summary: got %+v, want 1 message", out)
	}
	b, _ := json.Marshal(in)
	if !strings.Contains(string(b), `"kind":"relay_summary"`) || !strings.Contains(string(b), `"count":5`) {
		t.Errorf("summary JSON %s: want kind relay_summary and count 5", b)
	}
}

// A message recorded at a stamp carries the stamp's time: the messages of
// one read and their answers share one clock read. A stamp older than the
// latest message's is taken as the latest's, so times never go back in Seq
// order.
func TestRecordAtStamp(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := faults.NewManualClock(start)
	r := New(Options{Size: 8, Clock: clk})
	local := r.Local(netip.MustParseAddrPort("127.0.0.1:3478"))
	rec := func(at Stamp, dir faults.Direction) {
		p := faults.Packet{Data: binding(t, ""), Dir: dir, Client: netip.MustParseAddrPort("127.0.0.1:50000")}
		r.Record(at, local, &p, &faults.Verdict{}, nil)
	}
	read := r.Now()
	clk.Advance(time.Millisecond)
	rec(read, faults.In)  // the read's time, not the clock's
	rec(read, faults.Out) // its answer: the same
	clk.Advance(time.Millisecond)
	rec(0, faults.In)     // now
	rec(read, faults.Out) // an older stamp: no earlier than the latest
	want := []time.Time{start, start, start.Add(2 * time.Millisecond), start.Add(2 * time.Millisecond)}
	recs := r.Since(0, 0, false)
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		if !rec.Time.Equal(want[i]) {
			t.Errorf("record %d: time %v, want %v", i, rec.Time, want[i])
		}
	}
}

// Each local address is named once; a Local the ring did not make, and
// addresses past maxLocals, read back as the zero address.
func TestLocals(t *testing.T) {
	r := New(Options{Size: 4})
	a, b := netip.MustParseAddrPort("127.0.0.1:3478"), netip.MustParseAddrPort("[::1]:3478")
	la, lb := r.Local(a), r.Local(b)
	if la == lb || r.Local(a) != la || la == 0 {
		t.Fatalf("Local: got %d and %d (again %d), want two distinct non-zero names, stable", la, lb, r.Local(a))
	}
	for i := range maxLocals {
		r.Local(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i+1)))
	}
	if got := r.Local(netip.MustParseAddrPort("10.0.0.2:1")); got != 0 {
		t.Errorf("Local past maxLocals: got %d, want 0", got)
	}
	for _, l := range []Local{lb, 0, maxLocals + 7} {
		p := faults.Packet{Data: binding(t, ""), Client: netip.MustParseAddrPort("127.0.0.1:50000")}
		r.Record(0, l, &p, &faults.Verdict{}, nil)
	}
	recs := r.Since(0, 0, false)
	if len(recs) != 3 || recs[0].Local != b || recs[1].Local.IsValid() || recs[2].Local.IsValid() {
		t.Fatalf("locals read back: got %+v, want %v, then the zero address twice", recs, b)
	}
}

// RecordPair records a message and its answer as two Records would, at
// one time, with consecutive Seqs.
func TestRecordPair(t *testing.T) {
	r := New(Options{Size: 8, CaptureBytes: 1 << 10})
	local := r.Local(netip.MustParseAddrPort("127.0.0.1:3478"))
	client := netip.MustParseAddrPort("127.0.0.1:50000")
	req := faults.Packet{Data: binding(t, "alice"), Dir: faults.In, Client: client}
	res := faults.Packet{Data: binding(t, ""), Dir: faults.Out, Client: client}
	at := r.Now()
	if seq := r.RecordPair(at, local, &req, &faults.Verdict{}, nil, &res, &faults.Verdict{}, nil); seq != 2 {
		t.Fatalf("RecordPair: got seq %d, want 2", seq)
	}
	recs := r.Since(0, 0, true)
	if len(recs) != 2 || recs[0].Dir != faults.In || recs[0].Username != "alice" || recs[1].Dir != faults.Out ||
		!recs[0].Time.Equal(recs[1].Time) || string(recs[1].Data) != string(res.Data) {
		t.Fatalf("got %+v, want the request then the answer, at one time, with their bytes", recs)
	}
}
