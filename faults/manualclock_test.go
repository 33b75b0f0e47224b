package faults_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
)

func TestManualClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := faults.NewManualClock(start)
	var fired atomic.Int32
	a := c.AfterFunc(time.Second, func() { fired.Add(1) })
	b := c.AfterFunc(2*time.Second, func() { fired.Add(10) })
	if got := c.Pending(); got != 2 {
		t.Fatalf("Pending = %d, want 2", got)
	}
	c.Advance(999 * time.Millisecond)
	if fired.Load() != 0 {
		t.Fatal("a timer fired early")
	}
	c.Advance(time.Millisecond)
	if fired.Load() != 1 || c.Pending() != 1 {
		t.Fatalf("after 1s: fired %d, pending %d; want 1 and 1", fired.Load(), c.Pending())
	}
	if a.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	if !b.Stop() || c.Pending() != 0 {
		t.Error("Stop of a pending timer did not cancel it")
	}
	c.Advance(time.Hour)
	if fired.Load() != 1 {
		t.Errorf("a stopped timer fired")
	}
	if got := c.Now(); !got.Equal(start.Add(time.Hour + time.Second)) {
		t.Errorf("Now = %v", got)
	}
}

func TestManualClockWaitPending(t *testing.T) {
	c := faults.NewManualClock(time.Unix(0, 0))
	go c.AfterFunc(time.Minute, func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitPending(ctx, 1); err != nil {
		t.Fatalf("WaitPending: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := c.WaitPending(short, 2); err == nil {
		t.Error("WaitPending(2) returned with one timer pending")
	}
}
