package webhook

import (
	"maps"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// Inflight returns how many requests the webhook holds open now: held sync
// requests, plus the synthetic load when the webhook is in sync mode. ""
// means every webhook together; an unknown name has none. It is exact at
// the moment it reads each webhook, and takes no lock.
func (h *Hub) Inflight(name string) int {
	if name != "" {
		hk := h.hooks[name]
		if hk == nil {
			return 0
		}
		return hk.inflightNow()
	}
	n := 0
	for _, hk := range h.list {
		n += hk.inflightNow()
	}
	return n
}

// Pending returns the held requests plus the async work still in progress
// plus the synthetic load. "" means every webhook together; an unknown name
// has none. It takes no lock.
func (h *Hub) Pending(name string) int {
	if name != "" {
		hk := h.hooks[name]
		if hk == nil {
			return 0
		}
		return hk.pendingNow()
	}
	n := 0
	for _, hk := range h.list {
		n += hk.pendingNow()
	}
	return n
}

func (hk *hook) inflightNow() int {
	n := hk.inflight.Load()
	if hk.syncMode.Load() {
		n += hk.synthetic.Load()
	}
	return int(n)
}

func (hk *hook) pendingNow() int {
	return int(hk.pending.Load() + hk.synthetic.Load())
}

// Recent reports whether a request to the webhook ("" = any webhook)
// matching q is held or pending now, or ended within q.Window of the
// Clock's now (both ends included; q.Window 0: held or pending now only).
// q.Body is matched against the first 64 KiB of the body that a Record
// keeps, once per request and pattern: the result is kept with the
// request (for the last 64 patterns asked about it). Synthetic load has no
// body or header: it matches only a q without body and size conditions.
//
// It runs on the STUN packet path: it scans the requests active now and the
// ended ones newest first, stopping at the first outside the window, under a
// read lock, and allocates only the first time it tries a body pattern on
// a request.
func (h *Hub) Recent(name string, q faults.WebhookQuery) bool {
	now := h.clock.Now()
	if name != "" {
		hk := h.hooks[name]
		return hk != nil && hk.recent(now, &q)
	}
	for _, hk := range h.list {
		if hk.recent(now, &q) {
			return true
		}
	}
	return false
}

func (hk *hook) recent(now time.Time, q *faults.WebhookQuery) bool {
	if q.Body == nil && q.MinBodyBytes <= 0 && q.MinHeaderBytes <= 0 && hk.synthetic.Load() > 0 {
		return true
	}
	hk.mu.RLock()
	defer hk.mu.RUnlock()
	for _, e := range hk.active {
		if e.matches(q.Body, q.MinBodyBytes, q.MinHeaderBytes) {
			return true
		}
	}
	if q.Window <= 0 {
		return false
	}
	since := now.Add(-q.Window)
	for i := range hk.ended.len() {
		e := hk.ended.at(i)
		if e.End.Before(since) {
			break
		}
		if e.matches(q.Body, q.MinBodyBytes, q.MinHeaderBytes) {
			return true
		}
	}
	return false
}

// Records returns copies of the webhook's newest records (up to
// Options.History), oldest first. An unknown name has none.
func (h *Hub) Records(name string) []Record { return h.copyRecords(name, true) }

// HookStats are one webhook's counts.
type HookStats struct {
	// Requests counts every recorded request since the Hub started (413,
	// 429 and held ones included; 404 and 405 are not recorded).
	Requests int `json:"requests"`
	// Statuses counts the answers by status; 0 counts requests whose client
	// went away before the answer. Held requests are not in it yet.
	Statuses map[int]int `json:"statuses"`
	// Inflight and Pending are what the Signals report now.
	Inflight int `json:"inflight"`
	Pending  int `json:"pending"`
	// Synthetic is the synthetic load set with webhook.set.
	Synthetic int `json:"synthetic"`
	// Mode is the current mode.
	Mode string `json:"mode"`
}

// Stats returns every webhook's counts, by name.
func (h *Hub) Stats() map[string]HookStats {
	out := make(map[string]HookStats, len(h.list))
	for _, hk := range h.list {
		hk.mu.RLock()
		out[hk.name] = HookStats{
			Requests:  hk.requests,
			Statuses:  maps.Clone(hk.statuses),
			Inflight:  hk.inflightNow(),
			Pending:   hk.pendingNow(),
			Synthetic: int(hk.synthetic.Load()),
			Mode:      hk.cfg.Mode,
		}
		hk.mu.RUnlock()
	}
	return out
}
