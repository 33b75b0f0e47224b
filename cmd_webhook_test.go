package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/webhook"
)

// startHub serves a Hub with the webhook "servicenow" (no latency) on a
// loopback httptest server.
func startHub(t *testing.T, hook config.Webhook) (*webhook.Hub, string) {
	t.Helper()
	hub := webhook.New(map[string]config.Webhook{"servicenow": hook}, webhook.Options{})
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close)
	return hub, srv.URL + "/webhook/servicenow"
}

var statusLine = regexp.MustCompile(`(?m)^  (\d{3}): (\d+)$`)

// summaryStatuses reads the "  201: 25" lines of the summary.
func summaryStatuses(t *testing.T, out string) map[int]int {
	t.Helper()
	got := map[int]int{}
	for _, m := range statusLine.FindAllStringSubmatch(out, -1) {
		code, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		got[code] = n
	}
	return got
}

func TestWebhookSummaryMatchesRecords(t *testing.T) {
	// A rate limit makes some requests 429, so the summary has two counts to
	// get right.
	hub, url := startHub(t, config.Webhook{
		Mode: "sync", Status: 201, Body: `{"result":{}}`, ContentType: "application/json",
		MaxBodyBytes: 1 << 20, RateLimit: 10,
	})
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"webhook", "-url", url, "-n", "25", "-c", "5",
		"-body", `{"ticket_id":"INC0010001"}`, "-H", "X-Trace: abc", "-H", "Host: crm.example"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	out := stdout.String()
	t.Log(out)

	recs := hub.Records("servicenow")
	want := map[int]int{}
	for _, r := range recs {
		want[r.Status]++
		if string(r.Body) != `{"ticket_id":"INC0010001"}` {
			t.Errorf("recorded body %q", r.Body)
		}
	}
	if len(recs) != 25 {
		t.Errorf("hub recorded %d requests, want 25", len(recs))
	}
	got := summaryStatuses(t, out)
	if len(got) == 0 || len(got) != len(want) {
		t.Errorf("summary statuses %v, hub recorded %v", got, want)
	}
	for code, n := range want {
		if got[code] != n {
			t.Errorf("status %d: summary says %d, hub recorded %d", code, got[code], n)
		}
	}
	for _, s := range []string{"requests: 25 in ", "transport errors: 0", "latency: p50 "} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q", s)
		}
	}
	if strings.Contains(out, "\r") {
		t.Error("progress line drawn on a buffer, not a terminal")
	}
}

func TestWebhookFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"concurrency 0", []string{"-c", "0"}},
		{"concurrency too high", []string{"-c", "1001"}},
		{"count 0", []string{"-n", "0"}},
		{"count too high", []string{"-n", "1000001"}},
		{"duration too long", []string{"-d", "11m"}},
		{"duration 0", []string{"-d", "0s"}},
		{"negative rate", []string{"-rate", "-1"}},
		{"body twice", []string{"-body", "x", "-body-file", "f"}},
		{"missing body file", []string{"-body-file", "/nonexistent/body.json"}},
		{"bad header", []string{"-H", "no colon"}},
		{"timeout 0", []string{"-timeout", "0s"}},
		{"not http", []string{"-url", "ftp://127.0.0.1/x"}},
		{"stray argument", []string{"servicenow"}},
		{"unknown flag", []string{"-bogus"}},
		{"not loopback", []string{"-url", "http://192.0.2.1/webhook/servicenow"}},
		{"not loopback ipv6", []string{"-url", "http://[2001:db8::1]:8478/webhook/servicenow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"webhook"}, tt.args...), &stdout, &stderr)
			if code := exitCode(err); code != 2 {
				t.Errorf("exit status %d (err %v), want 2", code, err)
			}
			if stdout.Len() != 0 {
				t.Errorf("sent requests anyway: %s", stdout.String())
			}
		})
	}
}

func TestWebhookRefusesRemoteBeforeSending(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"webhook", "-url", "http://192.0.2.1/", "-timeout", "1ms"}, &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "-allow-remote") {
		t.Errorf("err = %v (status %d), want status 2 naming -allow-remote", err, exitCode(err))
	}
}

func TestWebhookAllFailedIsStatus1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every connection is refused
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"webhook", "-http", addr, "-n", "3"}, &stdout, &stderr)
	if code := exitCode(err); code != 1 {
		t.Errorf("exit status %d (err %v), want 1", code, err)
	}
	if !strings.Contains(stdout.String(), "transport errors: 3") {
		t.Errorf("summary:\n%s\nwant 3 transport errors", stdout.String())
	}
}

func TestWebhookDurationStops(t *testing.T) {
	hub, url := startHub(t, config.Webhook{Mode: "sync", Status: 200, MaxBodyBytes: 1 << 20})
	var stdout, stderr bytes.Buffer
	// -d alone: the duration decides, paced to 50/s for 200ms.
	err := run(context.Background(), []string{"webhook", "-url", url, "-d", "200ms", "-rate", "50", "-c", "2"}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	n := len(hub.Records("servicenow"))
	if n < 1 || n > 20 {
		t.Errorf("%d requests in 200ms at 50/s, want about 10", n)
	}
	if got := summaryStatuses(t, stdout.String())[200]; got != n {
		t.Errorf("summary 200: %d, hub recorded %d", got, n)
	}
}

// The summary's send rate is the rate the webhook received, however long
// it holds each request: 5 requests at 20/s to a webhook that holds each
// for 300ms were sent at about 20/s, not 5 over the half second the run
// took.
func TestWebhookSummaryRateIgnoresHoldTime(t *testing.T) {
	hub, url := startHub(t, config.Webhook{Mode: "sync", Status: 201, Latency: faults.Duration(300 * time.Millisecond), MaxBodyBytes: 1 << 20})
	r := runCLI(t, "", "webhook", "-url", url, "-n", "5", "-c", "5", "-rate", "20")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.text())
	}
	m := regexp.MustCompile(`(?m)^sent: ([0-9.]+)/s over `).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no send rate in the summary:\n%s", r.stdout)
	}
	if rate, _ := strconv.ParseFloat(m[1], 64); rate < 14 || rate > 26 {
		t.Errorf("send rate %v/s, want about 20/s:\n%s", rate, r.stdout)
	}
	if n := len(hub.Records("servicenow")); n != 5 {
		t.Errorf("hub recorded %d requests, want 5", n)
	}
}
