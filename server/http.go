package server

import (
	"encoding/json"
	"net/http"
)

// handler returns the HTTP side's routes: health, version, the simulated
// webhooks, and the control socket with its plain-HTTP twin /api/{op}.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /version", handleVersion)
	// No method in the pattern: the hub answers 405 and 404 itself.
	mux.Handle("/webhook/", s.hub)
	mux.Handle("/control", s.ctl)
	mux.Handle("/api/", s.ctl)
	return mux
}

// healthz is /healthz's answer.
type healthz struct {
	Status    string     `json:"status"`
	Listeners []Listener `json:"listeners"`
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthz{Status: "ok", Listeners: s.Listeners()})
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
