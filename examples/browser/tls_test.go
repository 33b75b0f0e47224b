package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// startTLSStunfault starts a stunfault whose only TURN listener is tls,
// with a generated self-signed certificate, and returns the turns: ICE
// server alone, its URL, and the Chromium flag that trusts it.
func startTLSStunfault(t *testing.T, rules ...faults.Rule) (ice []server.ICEServer, turnsURL, trustFlag string) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = []config.Listener{{Transport: "tls", Address: "127.0.0.1:0"}}
	srv := startStunfault(t, &cfg, rules...)
	var l server.Listener
	for _, x := range srv.Listeners() {
		if x.Transport == "tls" {
			l = x
		}
	}
	if l.SPKI == "" {
		t.Fatalf("the tls listener reports no SPKI: %+v", srv.Listeners())
	}
	turnsURL = "turns:" + l.Addr.String() + "?transport=tcp"
	for _, s := range srv.ICEServers() {
		for _, u := range s.URLs {
			if u == turnsURL {
				ice = []server.ICEServer{{URLs: []string{u}, Username: s.Username, Credential: s.Credential}}
			}
		}
	}
	if ice == nil {
		t.Fatalf("ICEServers has no %s: %+v", turnsURL, srv.ICEServers())
	}
	return ice, turnsURL, "--ignore-certificate-errors-spki-list=" + l.SPKI
}

// With the SPKI flag the banner prints, Chromium gathers a relay candidate
// through a turns: URL, over TLS.
func TestChromiumRelayOverTLS(t *testing.T) {
	t.Parallel()
	ice, turnsURL, trust := startTLSStunfault(t)
	overTLS := func(e Event) bool { return e.URL == turnsURL && e.RelayProtocol == "tls" }
	evs := gatherInChromiumWith(t, ice, "", browserTimeout, []string{trust}, func(evs events) bool {
		return len(evs.candidates("relay", overTLS)) > 0
	})
	for _, c := range evs.candidates("relay", nil) {
		report(t, fmt.Sprintf("chromium gathered: %s from %s, relayProtocol %s", c, c.URL, c.RelayProtocol))
	}
	if errs := evs.errors(); len(errs) > 0 {
		t.Errorf("got errors %v, want none", errs)
	}
}

// A 403 on the authenticated Allocate over TLS shows its full code on the
// turns: URL, as over UDP and TCP.
func TestChromiumAllocate403OverTLS(t *testing.T) {
	t.Parallel()
	ice, turnsURL, trust := startTLSStunfault(t, allocate403Rule)
	evs := gatherInChromiumWith(t, ice, "", browserTimeout, []string{trust}, func(evs events) bool {
		return evs.errorFor(turnsURL, 403)
	})
	logErrors(t, evs)
	if n := len(evs.candidates("relay", nil)); n > 0 {
		t.Errorf("got %d relay candidates, want none", n)
	}
}

// Without the flag Chromium refuses the self-signed certificate: a 701 on
// the turns: URL, and no relay candidate.
func TestChromiumRefusesSelfSignedTLS(t *testing.T) {
	t.Parallel()
	ice, turnsURL, _ := startTLSStunfault(t)
	evs := gatherInChromium(t, ice, "", browserTimeout, func(evs events) bool {
		for _, e := range evs.errors() {
			if e.URL == turnsURL && e.ErrorCode == 701 {
				return true
			}
		}
		return false
	})
	logErrors(t, evs)
	for _, e := range evs.errors() {
		if e.URL == turnsURL && e.ErrorCode == 701 && !strings.Contains(strings.ToLower(e.ErrorText), "connect") {
			t.Errorf("701 with errorText %q, want one about the connection", e.ErrorText)
		}
	}
	if n := len(evs.candidates("relay", nil)); n > 0 {
		t.Errorf("got %d relay candidates through an untrusted certificate, want none", n)
	}
}
