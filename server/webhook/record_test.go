package webhook

import (
	"fmt"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// A held request's body is scanned once per body pattern: later answers
// come from the entry's memo (shown here by changing the body behind its
// back, which the Hub never does), and the memo keeps at most maxBodyMemo
// patterns.
func TestEntryScansOncePerPattern(t *testing.T) {
	compile := func(expr string) *faults.Pattern {
		p, err := faults.CompilePattern(expr)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	e := &entry{Record: Record{Body: []byte(`{"ticket_id":1}`)}}
	ticket, other := compile("ticket_id"), compile("custom_attr")
	if !e.matches(ticket, 0, 0) || e.matches(other, 0, 0) {
		t.Fatal("first answers wrong")
	}
	e.Body = []byte(`{"custom_attr":1}`)
	if !e.matches(ticket, 0, 0) || e.matches(other, 0, 0) {
		t.Error("a pattern scanned the body again instead of using the memo")
	}
	if got := len(*e.memo.Load()); got != 2 {
		t.Errorf("memo holds %d results, want 2", got)
	}

	for i := range maxBodyMemo + 10 {
		e.matches(compile(fmt.Sprint("p", i)), 0, 0)
	}
	if got := len(*e.memo.Load()); got != maxBodyMemo {
		t.Errorf("memo holds %d results, want the bound %d", got, maxBodyMemo)
	}
	if !e.matches(other, 0, 0) {
		t.Error("a pattern forgotten by the memo was not scanned again")
	}
}
