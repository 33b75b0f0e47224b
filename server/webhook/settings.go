package webhook

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// ErrUnknownWebhook is returned (wrapped) by Hub.Set for a name that is not
// a configured webhook; a control.Backend's SetWebhook returns it too, and
// the control socket answers it with unknown_webhook.
var ErrUnknownWebhook = errors.New("webhook: unknown webhook")

// MaxSynthetic bounds Settings.SyntheticPending.
const MaxSynthetic = 1_000_000

// Settings is the control op webhook.set: the fields given (not nil) replace
// the webhook's current value; the others stay.
type Settings struct {
	// Latency is how long requests are held (sync) or their work stays
	// pending (async), from the next request on.
	Latency *faults.Duration `json:"latency,omitempty"`
	// Jitter is up to this much extra latency, at random.
	Jitter *faults.Duration `json:"jitter,omitempty"`
	// Mode is "sync" or "async", from the next request on. Requests already
	// held or pending finish as they began.
	Mode *string `json:"mode,omitempty"`
	// Status is the status sync requests are answered with.
	Status *int `json:"status,omitempty"`
	// SyntheticPending sets N synthetic requests that count without HTTP
	// calls: in Pending always, and in Inflight too while the webhook is in
	// sync mode (they count as held in sync mode, as pending work in async
	// mode). 0 clears them. They have no body and no header, so Recent
	// counts them only for a query without body and size conditions.
	SyntheticPending *int `json:"synthetic_pending,omitempty"`
}

// Set applies s to the webhook name. It returns an error wrapping
// ErrUnknownWebhook for an unknown name, and for invalid values one wrapping
// a *faults.FieldError per field ("latency", "jitter", "mode", "status",
// "synthetic_pending"), changing nothing. The values given are held to the
// same ranges as in the config ([config.Webhook.Validate]).
func (h *Hub) Set(name string, s Settings) error {
	hk := h.hooks[name]
	if hk == nil {
		return fmt.Errorf("%w %q (have %s)", ErrUnknownWebhook, name, orNone(h.names))
	}
	hk.mu.Lock()
	defer hk.mu.Unlock()
	next := hk.cfg
	if err := s.validate(next); err != nil {
		return fmt.Errorf("webhook %q: %w", name, err)
	}
	s.apply(&next)
	hk.cfg = next
	hk.syncMode.Store(next.Mode == "sync")
	if s.SyntheticPending != nil {
		hk.synthetic.Store(int64(*s.SyntheticPending))
	}
	hk.changes.notify()
	h.log.Debug("webhook set", "webhook", name, "mode", hk.cfg.Mode, "latency", hk.cfg.Latency,
		"status", hk.cfg.Status, "synthetic", hk.synthetic.Load())
	return nil
}

// Validate checks the values s gives against their ranges, without a
// webhook: config's for the config's keys ([config.Webhook.Validate]) and
// synthetic_pending's own. The error, when not nil, joins one
// *faults.FieldError per field. [Hub.Set] checks the same.
func (s Settings) Validate() error {
	return s.validate(config.Webhook{Mode: "sync", Status: 200, MaxBodyBytes: 1})
}

// validate checks the fields s sets, as they would be in next: config's
// checks for the config's keys, and synthetic_pending's own range.
func (s *Settings) validate(next config.Webhook) error {
	s.apply(&next)
	given := map[string]bool{"latency": s.Latency != nil, "jitter": s.Jitter != nil, "mode": s.Mode != nil, "status": s.Status != nil}
	var errs []error
	for _, fe := range faults.FieldErrors(next.Validate()) {
		if given[fe.Field] {
			errs = append(errs, fe)
		}
	}
	if s.SyntheticPending != nil && (*s.SyntheticPending < 0 || *s.SyntheticPending > MaxSynthetic) {
		errs = append(errs, &faults.FieldError{Field: "synthetic_pending", Msg: fmt.Sprintf("must be between 0 and %d, got %d", MaxSynthetic, *s.SyntheticPending)})
	}
	return errors.Join(errs...)
}

// apply sets the fields s gives in w.
func (s *Settings) apply(w *config.Webhook) {
	if s.Latency != nil {
		w.Latency = *s.Latency
	}
	if s.Jitter != nil {
		w.Jitter = *s.Jitter
	}
	if s.Mode != nil {
		w.Mode = *s.Mode
	}
	if s.Status != nil {
		w.Status = *s.Status
	}
}

// withJitter returns latency plus a uniform draw from [0, jitter], for any
// values: no overflow and no panic (a sum past the largest Duration is that
// Duration). Validated configs keep both at most config.MaxWebhookLatency.
func withJitter(r *rand.Rand, latency, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return latency
	}
	j := time.Duration(r.Uint64N(uint64(jitter) + 1)) //nolint:gosec // jitter > 0, so uint64(jitter)+1 <= 1<<63 and the draw fits
	if latency > math.MaxInt64-j {
		return math.MaxInt64
	}
	return latency + j
}
