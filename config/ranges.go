package config

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// The ranges of the config's numbers and durations. [Config.Validate],
// `stunfault check` and the control op webhook.set enforce the same ones,
// and README.md's configuration reference lists them. (The ranges of rule
// fields are [faults.Rule.Validate]'s.)
const (
	// MaxJournalSize bounds [server].journal_size (at least 1).
	MaxJournalSize = 1_000_000

	// MinLifetime and MaxLifetime bound the [relay] lifetimes. TURN's
	// LIFETIME attribute counts whole seconds.
	MinLifetime = time.Second
	MaxLifetime = 24 * time.Hour

	// MaxWebhookLatency bounds a webhook's latency and its jitter (each
	// from 0).
	MaxWebhookLatency = time.Hour
	// MaxWebhookBodyBytes bounds max_body_bytes (at least 1). Bodies are
	// read and counted, and only their first bytes kept, so the cost of a
	// large limit is reading time, not memory.
	MaxWebhookBodyBytes = 1 << 30
	// MaxWebhookRateLimit bounds rate_limit, in requests per second (0 =
	// no limit).
	MaxWebhookRateLimit = 1_000_000
	// MinWebhookStatus and MaxWebhookStatus bound status and error_status:
	// a final HTTP status (net/http sends a 1xx as an informational
	// response, and then 200).
	MinWebhookStatus = 200
	MaxWebhookStatus = 599
)

// Validate checks w's values against their ranges (see the constants
// above). The error, when not nil, joins one *[faults.FieldError] per
// problem, its Field the TOML key ("latency", "max_body_bytes"). A zero
// Webhook is not valid: Mode, Status and MaxBodyBytes have no zero default.
func (w Webhook) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &faults.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	durationIn := func(field string, d faults.Duration) {
		if d < 0 || d.D() > MaxWebhookLatency {
			bad(field, "must be between 0s and %v, got %v", MaxWebhookLatency, d)
		}
	}
	durationIn("latency", w.Latency)
	durationIn("jitter", w.Jitter)
	if w.Mode != "sync" && w.Mode != "async" {
		bad("mode", "unknown mode %q (want sync or async)", w.Mode)
	}
	if w.Status < MinWebhookStatus || w.Status > MaxWebhookStatus {
		bad("status", "must be between %d and %d, got %d", MinWebhookStatus, MaxWebhookStatus, w.Status)
	}
	if w.ErrorStatus != 0 && (w.ErrorStatus < MinWebhookStatus || w.ErrorStatus > MaxWebhookStatus) {
		bad("error_status", "must be 0 (none) or between %d and %d, got %d", MinWebhookStatus, MaxWebhookStatus, w.ErrorStatus)
	}
	if p := w.ErrorProbability; math.IsNaN(p) || p < 0 || p > 1 {
		bad("error_probability", "must be between 0 and 1, got %v", p)
	}
	if r := w.RateLimit; math.IsNaN(r) || r < 0 || r > MaxWebhookRateLimit {
		bad("rate_limit", "must be between 0 (no limit) and %d requests per second, got %v", MaxWebhookRateLimit, r)
	}
	if w.MaxBodyBytes < 1 || w.MaxBodyBytes > MaxWebhookBodyBytes {
		bad("max_body_bytes", "must be between 1 and %d, got %d", MaxWebhookBodyBytes, w.MaxBodyBytes)
	}
	return errors.Join(errs...)
}
