package server

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/stunfault/stunfault/server/dashboard"
)

// handler returns the HTTP side's routes: health, version, the simulated
// webhooks, the control socket with its plain-HTTP twin /api/{op}, and
// the dashboard (GET / and its files).
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /version", handleVersion)
	mux.Handle("GET /metrics", s.newMetricsHandler()) // read-only and open, like /healthz
	mux.Handle("GET /trace", s.ctl.Protect(http.HandlerFunc(s.handleTrace)))
	mux.Handle("GET /capture.pcapng", s.ctl.Protect(http.HandlerFunc(s.handleCapture)))
	// No method in the pattern: the hub answers 405 and 404 itself.
	mux.Handle("/webhook/", s.hub)
	mux.Handle("/control", s.ctl)
	mux.Handle("/api/", s.ctl)
	mux.Handle("GET /{$}", s.dash)
	mux.Handle("GET "+dashboard.Prefix, s.dash)
	return mux
}

// healthz is /healthz's answer: status "ok" (200), or "failing" (503)
// when a listener has stopped accepting connections for good.
type healthz struct {
	Status    string     `json:"status"`
	Listeners []Listener `json:"listeners"`
	// Failed lists the listeners that stopped accepting, and why.
	Failed []failedListener `json:"failed,omitempty"`
}

// guarded is a listener's guard (udpGuard, guardListener): it knows when
// the listener has stopped serving for good.
type guarded interface {
	listener() Listener
	failure() error
}

// failedListener is a listener that stopped accepting, in /healthz.
type failedListener struct {
	Transport string `json:"transport"`
	Address   string `json:"address"`
	Error     string `json:"error"`
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	h := healthz{Status: "ok", Listeners: s.Listeners()}
	s.mu.Lock()
	guarded := s.guarded
	s.mu.Unlock()
	for _, g := range guarded {
		if err := g.failure(); err != nil {
			l := g.listener()
			f := failedListener{Transport: l.Transport, Address: l.Addr.String(), Error: err.Error()}
			if !slices.ContainsFunc(h.Failed, func(o failedListener) bool { return o.Transport == f.Transport && o.Address == f.Address }) {
				h.Failed = append(h.Failed, f) // once, however many of its read loops failed
			}
		}
	}
	status := http.StatusOK
	if len(h.Failed) > 0 {
		h.Status, status = "failing", http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// bodyDeadline bounds reading each request body to d from when the handler
// starts (net/http's ReadTimeout would also cut a webhook request held
// for its latency). The deadline is lifted when the body is read to its
// end, so a handler may then hold the request.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, lift: sync.OnceFunc(func() { _ = rc.SetReadDeadline(time.Time{}) })}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body has been read.
type deadlineBody struct {
	io.ReadCloser
	lift func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.lift()
	}
	return n, err
}

func handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, BuildVersion())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
