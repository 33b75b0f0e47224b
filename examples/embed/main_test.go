package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
)

// The example prints a usable RTCConfiguration and a live health URL; the
// first Binding to its STUN URL gets the rule's 403 and the second
// succeeds; at the end it reports the one firing.
func TestEmbedServesTheRuleAndReportsIt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, pw, slog.New(slog.DiscardHandler)); _ = pw.Close() }()
	lines := bufio.NewScanner(pr)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("output ended early: %v", lines.Err())
		}
		return lines.Text()
	}

	if l := next(); !strings.HasPrefix(l, "rule screenpop-403 added (revision ") {
		t.Fatalf("first line %q", l)
	}
	var js strings.Builder
	for l := next(); ; l = next() {
		js.WriteString(strings.TrimPrefix(l, "new RTCPeerConnection("))
		if l == "})" {
			break
		}
	}
	var rtc struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSuffix(js.String(), ")")), &rtc); err != nil {
		t.Fatalf("printed RTCConfiguration is not JSON: %v\n%s", err, js.String())
	}
	if len(rtc.ICEServers) != 2 || !strings.HasPrefix(rtc.ICEServers[0].URLs[0], "stun:127.0.0.1:") ||
		rtc.ICEServers[1].Username != "user" {
		t.Fatalf("iceServers = %+v", rtc.ICEServers)
	}

	url := strings.TrimPrefix(next(), "health: ")
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", url, res.Status)
	}

	stunAddr := strings.TrimPrefix(rtc.ICEServers[0].URLs[0], "stun:")
	for i, want := range []int{403, 0} {
		if got := binding(t, stunAddr); got != want {
			t.Errorf("Binding %d: code %d, want %d (0: success)", i+1, got, want)
		}
	}

	cancel()
	if l := next(); l != "Bindings answered 403 by screenpop-403: 1" {
		t.Errorf("last line %q, want the one firing", l)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// binding sends one Binding request and returns its error code (0 for a
// success).
func binding(t *testing.T, addr string) int {
	t.Helper()
	c, err := stun.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code := -1
	if err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
		if e.Error != nil {
			return
		}
		var ec stun.ErrorCodeAttribute
		if ec.GetFrom(e.Message) == nil {
			code = int(ec.Code)
		} else {
			code = 0
		}
	}); err != nil {
		t.Fatal(err)
	}
	return code
}
