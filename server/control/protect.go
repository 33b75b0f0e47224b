package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

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

// TokenRequired reports whether the handler requires a token.
func (h *Handler) TokenRequired() bool { return h.opts.Token != "" }

// AllowsPage reports whether a page served for r may show the server's data:
// r carries the token when one is required, and the page's own origin (the
// Origin r has, or else the host r was sent to) is one the control socket
// accepts. The dashboard at GET / inlines its first data only then, so a
// page on a DNS-rebinding name sees no more than the socket would show it.
func (h *Handler) AllowsPage(r *http.Request) bool {
	if !h.authorized(r) {
		return false
	}
	if r.Header.Get("Origin") != "" {
		return h.originAllowed(r)
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	page := r.Clone(r.Context())
	page.Header.Set("Origin", scheme+r.Host)
	return h.originAllowed(page)
}

// Do runs one op for Go code in the same process, as POST /api/{op}
// would (subscribe and unsubscribe need the WebSocket), and returns its
// result as JSON, or the reply's *Error.
func (h *Handler) Do(ctx context.Context, op string, params any) (json.RawMessage, error) {
	body := []byte("{}")
	if params != nil {
		var err error
		if body, err = json.Marshal(params); err != nil {
			return nil, fmt.Errorf("control: encoding %s: %w", op, err)
		}
	}
	rep, _ := h.handle(ctx, nil, body, op)
	if rep.Error != nil {
		return nil, rep.Error
	}
	return rep.Result, nil
}
