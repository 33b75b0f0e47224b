package servertest

import (
	"testing"
)

// panicTB panics on Logf once finished, as testing.T does after its test.
type panicTB struct {
	testing.TB
	finished bool
	lines    []string
}

func (p *panicTB) Logf(format string, args ...any) {
	if p.finished {
		panic("Logf after the test finished")
	}
	p.lines = append(p.lines, format)
}

// A record written after stop is dropped, not logged to the finished test.
func TestTestLogDropsRecordsAfterStop(t *testing.T) {
	tb := &panicTB{}
	l := &testLog{tb: tb}
	if _, err := l.Write([]byte("level=INFO msg=before\n")); err != nil {
		t.Fatal(err)
	}
	l.stop()
	tb.finished = true
	if n, err := l.Write([]byte("level=INFO msg=after\n")); err != nil || n != len("level=INFO msg=after\n") {
		t.Errorf("Write after stop: %d, %v", n, err)
	}
	if len(tb.lines) != 1 {
		t.Errorf("logged %d lines, want 1", len(tb.lines))
	}
	var nilLog *testLog
	nilLog.stop() // no WithLogs: nothing to stop
}
