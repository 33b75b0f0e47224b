package control

import "net/http"

// Protect returns next behind the same checks as /api/{op}: the token, when
// one is set ("Authorization: Bearer TOKEN" or "?token=TOKEN"), and the
// Origin of browser requests. The server puts its other read endpoints that
// show what clients sent (GET /trace, GET /capture.pcapng) behind it.
func (h *Handler) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.guard(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
