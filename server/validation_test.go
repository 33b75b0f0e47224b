package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server"
)

// postAPI sends body to POST /api/op and returns the reply's status and
// body, compacted.
func postAPI(t *testing.T, srv *server.Server, op, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.HTTPURL()+"/api/"+op, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, b)
	}
	return resp.StatusCode, compact.String()
}

// The control socket holds webhook.set to the config's ranges, in the
// config's words.
func TestWebhookSetRangesOnTheWire(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	tests := []struct {
		name, body, want string
	}{
		{"latency over 1h", `{"name":"servicenow","latency":"2h"}`,
			`{"ok":false,"error":{"code":"bad_request","message":"latency: must be between 0s and 1h0m0s, got 2h0m0s","field":"latency"}}`},
		{"status 700", `{"name":"servicenow","status":700}`,
			`{"ok":false,"error":{"code":"bad_request","message":"status: must be between 200 and 599, got 700","field":"status"}}`},
		{"negative synthetic load", `{"name":"servicenow","synthetic_pending":-1}`,
			`{"ok":false,"error":{"code":"bad_request","message":"synthetic_pending: must be between 0 and 1000000, got -1","field":"synthetic_pending"}}`},
		{"1xx status", `{"name":"servicenow","status":150}`,
			`{"ok":false,"error":{"code":"bad_request","message":"status: must be between 200 and 599, got 150","field":"status"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postAPI(t, srv, "webhook.set", tt.body)
			if status != http.StatusBadRequest || body != tt.want {
				t.Errorf("POST /api/webhook.set %s:\n got %d %s\nwant 400 %s", tt.body, status, body, tt.want)
			}
		})
	}
}

// "localhost" in an address is 127.0.0.1, bound without asking a resolver.
func TestLocalhostBindsLoopback(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Listen = []config.Listener{{Transport: "udp", Address: "localhost:0"}, {Transport: "tcp", Address: "localhost:0"}}
	cfg.HTTP.Address = "localhost:0"
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, l := range srv.Listeners() {
		if l.Addr.Addr().String() != "127.0.0.1" {
			t.Errorf("%s listener on %s, want 127.0.0.1", l.Transport, l.Addr)
		}
	}
	if a := srv.HTTPAddr(); a.Addr().String() != "127.0.0.1" {
		t.Errorf("HTTP on %s, want 127.0.0.1", a)
	}
}

// The control socket refuses what the config refuses: a rule naming a
// webhook the server does not have.
func TestControlRefusesUnknownWebhook(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	tests := []struct {
		name, op, body, want string
	}{
		{"rules.add", "rules.add", `{"rule":{"id":"crm","match":{"webhook":{"name":"crm","min_inflight":1}},"action":{"type":"drop"}}}`,
			`{"ok":false,"error":{"code":"invalid_rule","message":"match.webhook.name: unknown webhook \"crm\" (have servicenow)","field":"match.webhook.name"}}`},
		{"rules.replace", "rules.replace", `{"rules":[{"id":"crm","match":{"webhook":{"name":"crm"}},"action":{"type":"drop"}}]}`,
			`{"ok":false,"error":{"code":"invalid_rule","message":"rules[0].match.webhook.name: unknown webhook \"crm\" (have servicenow)","field":"rules[0].match.webhook.name"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postAPI(t, srv, tt.op, tt.body)
			if status != http.StatusUnprocessableEntity || body != tt.want {
				t.Errorf("POST /api/%s %s:\n got %d %s\nwant 422 %s", tt.op, tt.body, status, body, tt.want)
			}
		})
	}
	if rules := srv.Faults().List(); len(rules) != 0 {
		t.Errorf("rules after refusals: %v, want none", rules)
	}
}
