package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The example prints a usable RTCConfiguration and a live health URL.
func TestEmbedPrintsICEServersAndServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, pw); _ = pw.Close() }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 512)
	for !strings.Contains(string(buf), "health: ") || !strings.HasSuffix(string(buf), "\n") {
		n, err := pr.Read(tmp)
		if err != nil {
			t.Fatalf("reading output: %v\n%s", err, buf)
		}
		buf = append(buf, tmp[:n]...)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	out := string(buf)

	js := out[strings.Index(out, "(")+1 : strings.LastIndex(out, ")")]
	var rtc struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.Unmarshal([]byte(js), &rtc); err != nil {
		t.Fatalf("printed RTCConfiguration is not JSON: %v\n%s", err, out)
	}
	if len(rtc.ICEServers) != 2 || !strings.HasPrefix(rtc.ICEServers[0].URLs[0], "stun:127.0.0.1:") ||
		rtc.ICEServers[1].Username != "user" {
		t.Errorf("iceServers = %+v", rtc.ICEServers)
	}

	url := strings.TrimSpace(out[strings.Index(out, "health: ")+len("health: "):])
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", url, res.Status)
	}
}
