package server

import (
	"fmt"
	"net/netip"
)

// ICEServer is one entry of an RTCConfiguration's iceServers, shaped like the
// browser's RTCIceServer so it marshals to the JSON a page expects.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEServers returns the ICE servers a WebRTC client should use: a stun: URL
// for every UDP listener, and turn: URLs for every listener (turns: for tls
// ones, whose certificate the client must trust: see Listener.SPKI) with the first
// [[users]] credential (or a REST API credential valid for a day when only
// [auth].secret is set). IP literals are used, never host names. Nil before
// Start.
func (s *Server) ICEServers() []ICEServer {
	ls := s.Listeners()
	if ls == nil {
		return nil
	}
	var stun ICEServer
	var turnURLs []string
	for _, l := range ls {
		switch l.Transport {
		case "udp":
			stun.URLs = append(stun.URLs, "stun:"+hostPort(l.Addr))
			turnURLs = append(turnURLs, "turn:"+hostPort(l.Addr)+"?transport=udp")
		case "tcp":
			turnURLs = append(turnURLs, "turn:"+hostPort(l.Addr)+"?transport=tcp")
		case "tls":
			turnURLs = append(turnURLs, "turns:"+hostPort(l.Addr)+"?transport=tcp")
		}
	}
	var out []ICEServer
	if len(stun.URLs) > 0 {
		out = append(out, stun)
	}
	if user, pass, ok := s.Credentials(); ok && len(turnURLs) > 0 {
		out = append(out, ICEServer{URLs: turnURLs, Username: user, Credential: pass})
	}
	return out
}

// Credentials returns a TURN username and password the server accepts: the
// first [[users]] entry, or else a REST API credential for "stunfault"
// valid for 24 hours when [auth].secret is set. ok is false when neither is
// configured.
func (s *Server) Credentials() (username, password string, ok bool) {
	if len(s.cfg.Users) > 0 {
		return s.cfg.Users[0].Name, s.cfg.Users[0].Password, true
	}
	if s.cfg.Auth.Secret != "" {
		username = fmt.Sprintf("%d:stunfault", s.clk.Now().Unix()+24*3600)
		return username, RESTPassword(s.cfg.Auth.Secret, username), true
	}
	return "", "", false
}

// hostPort writes an AddrPort as a URL host: IPv6 in brackets.
func hostPort(a netip.AddrPort) string { return a.String() }
