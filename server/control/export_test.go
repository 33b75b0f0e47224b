package control

// SetForwardHook makes every subscription of h call f before it forwards a
// live event, so a test can hold a subscriber back.
func (h *Handler) SetForwardHook(f func()) { h.forwardHook = f }
