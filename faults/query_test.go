package faults

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestQueryValidate(t *testing.T) {
	tests := []struct {
		q      Query
		fields []string
	}{
		{Query{}, nil},
		{Query{Rule: "anything", Method: "binding", Class: "error", Transport: "tcp", Direction: "out", Client: "10.0.0.0/8", Limit: 3}, nil},
		{Query{Client: "127.0.0.1"}, nil},
		{Query{Client: "[::1]:5000"}, nil},
		{Query{Method: "bindng"}, []string{"method"}},
		{Query{Class: "requests"}, []string{"class"}},
		{Query{Transport: "tls"}, []string{"transport"}},
		{Query{Direction: "inbound"}, []string{"direction"}},
		{Query{Client: "localhost"}, []string{"client"}},
		{Query{Client: "10.0.0.0/33"}, []string{"client"}},
		{Query{Limit: -1}, []string{"limit"}},
		{Query{Method: "x", Client: "y", Limit: -1}, []string{"method", "client", "limit"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.q), func(t *testing.T) {
			var fields []string
			for _, fe := range FieldErrors(tt.q.Validate()) {
				fields = append(fields, fe.Field)
			}
			if !reflect.DeepEqual(fields, tt.fields) {
				t.Errorf("Validate fields = %v, want %v", fields, tt.fields)
			}
		})
	}
}

func TestJournalVerify(t *testing.T) {
	j := newJournal(100)
	labels := map[string]string{"test": "a"}
	for _, e := range []Entry{
		{Rule: "r", Method: "binding", Class: "request", Labels: labels},    // 1
		{Rule: "r", Method: "allocate", Class: "request", Labels: labels},   // 2: method
		{Rule: "s", Method: "allocate", Class: "request"},                   // 3: rule, method, labels.test
		{Rule: "r", Method: "binding", Class: "request"},                    // 4: labels.test
		{Rule: "r", Method: "allocate", Class: "request", Labels: labels},   // 5: method
		{Rule: "r", Method: "binding", Class: "indication", Labels: labels}, // 6: class
	} {
		j.record(e)
	}
	q := Query{Rule: "r", Method: "binding", Class: "request", Labels: labels}
	if v := j.Verify(q, 1); !v.Match || v.Actual != 1 || v.NearMisses != nil {
		t.Errorf("Verify(want 1) = %+v, want a match and no near misses", v)
	}
	v := j.Verify(q, 2)
	if v.Match || v.Actual != 1 || v.Expected != 2 {
		t.Errorf("Verify(want 2) = %+v, want actual 1, no match", v)
	}
	var got []string
	for _, nm := range v.NearMisses {
		got = append(got, fmt.Sprint(nm.Entry.Seq, nm.Failed))
	}
	// Fewest failed fields first, latest first among equals, at most 5.
	want := []string{"6 [class]", "5 [method]", "4 [labels.test]", "2 [method]", "3 [rule method labels.test]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("near misses = %q, want %q", got, want)
	}
	v.NearMisses[0].Entry.Labels["test"] = "changed"
	if n := j.Count(Query{Labels: labels}); n != 4 {
		t.Errorf("after changing a near miss: Count = %d, want 4 (near misses are copies)", n)
	}
	if v := j.Verify(Query{SinceSeq: 5}, 0); len(v.NearMisses) != MaxNearMisses || v.NearMisses[0].Failed[0] != "since_seq" {
		t.Errorf("Verify(since 5) = %+v, want near misses failing since_seq", v)
	}
}

// A reader in the middle of a scan does not hold up recording: record
// returns while the reader is stopped inside the journal.
func TestJournalRecordNeverWaitsOnAReader(t *testing.T) {
	j := newJournal(8)
	for range 8 {
		j.record(Entry{Rule: "old"})
	}
	inside, release := make(chan struct{}), make(chan struct{})
	var visited []uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.each(func(e *Entry) bool {
			if len(visited) == 0 {
				close(inside)
				<-release
			}
			visited = append(visited, e.Seq)
			return true
		})
	}()
	<-inside
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for range 20 { // wraps the ring twice over the paused reader
			j.record(Entry{Rule: "new"})
		}
	}()
	select {
	case <-recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("record waited on a reader")
	}
	close(release)
	<-done
	// The reader saw the entries of the window it started with (or some of
	// them: those that left the window meanwhile may be skipped), in order.
	for i, s := range visited {
		if s < 1 || s > 8 || (i > 0 && s <= visited[i-1]) {
			t.Errorf("paused reader visited %v, want an ordered subset of 1..8", visited)
			break
		}
	}
	if got := j.Count(Query{Rule: "new"}); got != 8 || j.Len() != 8 || j.LastSeq() != 28 {
		t.Errorf("Count(new) %d, Len %d, LastSeq %d; want 8, 8, 28", got, j.Len(), j.LastSeq())
	}
}

// Recording, reading and clearing at once: every entry a reader returns is
// whole and in order (run with -race).
func TestJournalConcurrentReaders(t *testing.T) {
	j := newJournal(64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j.record(Entry{Rule: fmt.Sprint("r", i%3), Labels: map[string]string{"i": fmt.Sprint(i)}})
			}
		})
	}
	for i := range 200 {
		var last uint64
		for _, e := range j.Query(Query{}) {
			if e.Seq <= last || e.Labels["i"] == "" {
				t.Fatalf("entry %+v after seq %d", e, last)
			}
			last = e.Seq
		}
		j.Count(Query{Rule: "r1"})
		j.Verify(Query{Rule: "r2"}, -1)
		if i%50 == 0 {
			j.Clear()
		}
	}
	close(stop)
	wg.Wait()
}
