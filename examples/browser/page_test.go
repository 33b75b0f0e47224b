package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for run's writes and the test's reads,
// which can wait for what they expect instead of polling.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // closed and replaced by every Write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote != nil {
		close(b.wrote)
	}
	b.wrote = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer contains want, or ctx ends.
func (b *syncBuffer) waitFor(ctx context.Context, want string) bool {
	for {
		b.mu.Lock()
		if b.wrote == nil {
			b.wrote = make(chan struct{})
		}
		ch, has := b.wrote, strings.Contains(b.buf.String(), want)
		b.mu.Unlock()
		if has {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// run serves the page, its /config filtered by the query string, and prints
// the events the page POSTs; it returns ctx's error when ctx ends. No browser
// is needed: the test plays the page.
func TestRunServesPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out syncBuffer
	urlc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, options{}, func(u string) { urlc <- u }) }()
	var pageURL string
	select {
	case pageURL = <-urlc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	get := func(path string) (int, string) {
		t.Helper()
		res, err := client.Get(pageURL + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(body)
	}

	if code, body := get("/"); code != http.StatusOK || !strings.Contains(body, "icecandidateerror") {
		t.Errorf("GET /: %d, page without icecandidateerror", code)
	}

	tests := []struct {
		query    string
		status   int
		prefixes []string // of the URLs /config answers, in order
		policy   string
	}{
		{"", http.StatusOK, []string{"stun:", "turn:", "turn:"}, "all"},
		{"?only=stun", http.StatusOK, []string{"stun:"}, "all"},
		{"?only=turn-udp", http.StatusOK, []string{"turn:127.0.0.1:"}, "all"},
		{"?only=turn-tcp&policy=relay", http.StatusOK, []string{"turn:127.0.0.1:"}, "relay"},
		{"?only=turns", http.StatusBadRequest, nil, ""},
		{"?policy=none", http.StatusBadRequest, nil, ""},
	}
	for _, tt := range tests {
		t.Run("config"+tt.query, func(t *testing.T) {
			code, body := get("/config" + tt.query)
			if code != tt.status {
				t.Fatalf("got status %d, want %d: %s", code, tt.status, body)
			}
			if code != http.StatusOK {
				return
			}
			var cfg PageConfig
			if err := json.Unmarshal([]byte(body), &cfg); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range cfg.ICEServers {
				got = append(got, s.URLs...)
			}
			if len(got) != len(tt.prefixes) {
				t.Fatalf("got URLs %v, want %d", got, len(tt.prefixes))
			}
			for i, p := range tt.prefixes {
				if !strings.HasPrefix(got[i], p) {
					t.Errorf("URL %d: got %s, want prefix %s", i, got[i], p)
				}
			}
			if cfg.ICETransportPolicy != tt.policy {
				t.Errorf("got policy %q, want %q", cfg.ICETransportPolicy, tt.policy)
			}
		})
	}

	ev := `{"type":"error","seq":3,"ms":12,"errorCode":3,"errorText":"Forbidden","url":"stun:127.0.0.1:3478","address":"127.0.0.x","port":5000}`
	res, err := client.Post(pageURL+"event", "application/json", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("POST /event: got %d, want %d", res.StatusCode, http.StatusNoContent)
	}
	want := `page: icecandidateerror 3 "Forbidden" stun:127.0.0.1:3478 (local 127.0.0.x:5000)`
	out.waitFor(ctx, want)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("run: got %v, want context.Canceled", err)
	}
	if !strings.Contains(out.String(), want) {
		t.Errorf("transcript without %q:\n%s", want, out.String())
	}
}
