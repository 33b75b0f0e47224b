package control

import (
	"fmt"
	"time"

	"github.com/stunfault/stunfault/faults"
)

func clockResult(clk faults.Clock) ClockResult {
	res := ClockResult{Now: clk.Now()}
	if m, ok := clk.(*faults.ManualClock); ok {
		res.Manual, res.Pending = true, m.Pending()
	}
	return res
}

func (h *Handler) opClockGet(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	return clockResult(h.b.Clock()), nil
}

// opClockAdvance moves a manual clock on; it returns once the timers that
// became due have run (a timed scenario's step is active, a held webhook
// request answered, a delayed message on its way).
func (h *Handler) opClockAdvance(r *request) (any, *Error) {
	var req struct {
		By string `json:"by"` // ClockRequest's, parsed here to name the field in every error
	}
	if e := r.decode(&req, "by"); e != nil {
		return nil, e
	}
	d, err := time.ParseDuration(req.By)
	switch {
	case err != nil:
		return nil, &Error{Code: CodeBadRequest, Field: "by", Message: fmt.Sprintf("by: %q is not a Go duration (want \"30s\", \"1m30s\")", req.By)}
	case d < 0:
		return nil, &Error{Code: CodeBadRequest, Field: "by", Message: fmt.Sprintf("by: %s is negative: time only moves forward", d)}
	case d > MaxClockAdvance:
		return nil, &Error{Code: CodeBadRequest, Field: "by", Message: fmt.Sprintf("by: %s is more than %s", d, MaxClockAdvance)}
	}
	clk := h.b.Clock()
	m, ok := clk.(*faults.ManualClock)
	if !ok {
		return nil, &Error{Code: CodeClockNotManual, Field: "by",
			Message: `the server runs on the system clock: start it with [server] clock = "manual" to move time`}
	}
	m.Advance(d)
	return clockResult(clk), nil
}
