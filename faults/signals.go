package faults

import "time"

// Signals is what the engine reads of the simulated webhook side (package
// server/webhook implements it). The engine calls it on the packet path, from
// many goroutines at once, only for rules whose match has a webhook section
// and only after every other condition of the rule held; implementations must
// be safe for concurrent use, fast, and must not block.
//
// A name is a webhook's name ([webhooks.NAME] in the config); "" means every
// webhook together.
type Signals interface {
	// Inflight returns how many HTTP requests the webhook holds open now.
	Inflight(name string) int
	// Pending returns the held requests plus the async work still in
	// progress (async mode answers at once but stays pending).
	Pending(name string) int
	// Recent reports whether a request matching q is held now, or ended
	// within q.Window (q.Window 0: held now only).
	Recent(name string, q WebhookQuery) bool
}

// WebhookQuery selects webhook requests for [Signals.Recent]. The zero value
// matches any request. The engine builds one per rule when the rule is
// compiled and passes it on every call, so implementations must not modify it.
type WebhookQuery struct {
	// Body, when not nil, must match the request body. A Pattern costs
	// a few nanoseconds per byte it scans; an implementation should scan
	// each request at most once per Pattern.
	Body *Pattern
	// MinBodyBytes and MinHeaderBytes are lower bounds on the body size and
	// on the header bytes (for each field: len(name) + len(value) + 4).
	MinBodyBytes, MinHeaderBytes int
	// Window lets a request that ended this long ago still count.
	Window time.Duration
}

// webhookMatcher is a compiled [WebhookMatch].
type webhookMatcher struct {
	name        string
	minInflight int
	minPending  int
	recent      bool // ask Recent: a body, size or window condition is set
	q           WebhookQuery
}

// match evaluates the condition. Without Signals it never holds.
func (w *webhookMatcher) match(s Signals) bool {
	if s == nil {
		return false
	}
	if w.minInflight > 0 && s.Inflight(w.name) < w.minInflight {
		return false
	}
	if w.minPending > 0 && s.Pending(w.name) < w.minPending {
		return false
	}
	if w.recent && !s.Recent(w.name, w.q) {
		return false
	}
	return true
}
