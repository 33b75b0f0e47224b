package webhook

import (
	"context"
	"sync"
)

// changes wakes Hub.Wait whenever a count the Signals report may have
// changed: a request held or ended, async work started or finished, a
// setting changed.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

func (c *changes) notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

func (c *changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Changed returns a channel that is closed at the Hub's next change of
// counts (a request held or ended, async work started or finished, a request
// recorded, a setting changed). Take it before reading the counts, then
// select on it with other events; Wait is the simple form.
func (h *Hub) Changed() <-chan struct{} { return h.changes.next() }

// Wait blocks until cond reports true or ctx ends, evaluating cond now and
// after every change of the Hub's counts (requests held or ended, async work
// started or finished, settings changed). Tests and examples use it to wait
// until a webhook call is being held before they look at what a rule does,
// instead of sleeping:
//
//	hub.Wait(ctx, func() bool { return hub.Inflight("servicenow") == 1 })
func (h *Hub) Wait(ctx context.Context, cond func() bool) error {
	for {
		ch := h.Changed()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
