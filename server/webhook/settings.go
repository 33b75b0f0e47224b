package webhook

import (
	"errors"
	"fmt"

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
// a *faults.FieldError per field ("latency", "mode", "status",
// "synthetic_pending"), changing nothing.
func (h *Hub) Set(name string, s Settings) error {
	hk := h.hooks[name]
	if hk == nil {
		return fmt.Errorf("%w %q (have %s)", ErrUnknownWebhook, name, orNone(h.names))
	}
	if err := s.validate(); err != nil {
		return fmt.Errorf("webhook %q: %w", name, err)
	}
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if s.Latency != nil {
		hk.cfg.Latency = *s.Latency
	}
	if s.Jitter != nil {
		hk.cfg.Jitter = *s.Jitter
	}
	if s.Mode != nil {
		hk.cfg.Mode = *s.Mode
		hk.syncMode.Store(*s.Mode == "sync")
	}
	if s.Status != nil {
		hk.cfg.Status = *s.Status
	}
	if s.SyntheticPending != nil {
		hk.synthetic.Store(int64(*s.SyntheticPending))
	}
	hk.changes.notify()
	h.log.Debug("webhook set", "webhook", name, "mode", hk.cfg.Mode, "latency", hk.cfg.Latency,
		"status", hk.cfg.Status, "synthetic", hk.synthetic.Load())
	return nil
}

func (s *Settings) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &faults.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Latency != nil && *s.Latency < 0 {
		bad("latency", "must not be negative, got %v", *s.Latency)
	}
	if s.Jitter != nil && *s.Jitter < 0 {
		bad("jitter", "must not be negative, got %v", *s.Jitter)
	}
	if s.Mode != nil && *s.Mode != "sync" && *s.Mode != "async" {
		bad("mode", "unknown mode %q (want sync or async)", *s.Mode)
	}
	if s.Status != nil && (*s.Status < 100 || *s.Status > 599) {
		bad("status", "must be between 100 and 599, got %d", *s.Status)
	}
	if s.SyntheticPending != nil && (*s.SyntheticPending < 0 || *s.SyntheticPending > MaxSynthetic) {
		bad("synthetic_pending", "must be between 0 and %d, got %d", MaxSynthetic, *s.SyntheticPending)
	}
	return errors.Join(errs...)
}
