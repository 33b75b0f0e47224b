package loadgen

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// startProgress draws a progress line on w, every progressInterval, until
// the returned stop is called; with a nil w it draws nothing.
func startProgress(w io.Writer, start time.Time, done, inflight *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	draw := func() {
		el := time.Since(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(done.Load()) / el
		}
		fmt.Fprintf(w, "\r%d done, %d in flight, %.1f req/s   ", done.Load(), inflight.Load(), rate)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-quit:
				return
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
		draw()
		fmt.Fprintln(w)
	}
}
