package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a target that answers each request with the status the
// request's X-Status asks for (200 without one) and records what it got.
type recorder struct {
	mu     sync.Mutex
	bodies []string
	hosts  []string
	traces []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.bodies = append(rec.bodies, string(body))
	rec.hosts = append(rec.hosts, r.Host)
	rec.traces = append(rec.traces, r.Header.Get("X-Trace"))
	n := len(rec.bodies)
	rec.mu.Unlock()
	if n%3 == 0 {
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func TestRunCountsEveryAnswer(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	res, err := RunHTTP(context.Background(), HTTP{
		URL: srv.URL, Concurrency: 4, Requests: 30, Timeout: 5 * time.Second,
		Body: []byte(`{"ticket_id":"INC1"}`), Header: http.Header{"X-Trace": {"abc"}}, Host: "crm.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 30 || res.Answered != 30 || res.Errors != 0 {
		t.Errorf("requests %d, answered %d, errors %d; want 30, 30, 0", res.Requests, res.Answered, res.Errors)
	}
	if res.Statuses[201] != 20 || res.Statuses[429] != 10 {
		t.Errorf("statuses %v, want 20 x 201 and 10 x 429", res.Statuses)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := range rec.bodies {
		if rec.bodies[i] != `{"ticket_id":"INC1"}` || rec.hosts[i] != "crm.example" || rec.traces[i] != "abc" {
			t.Fatalf("request %d: body %q, Host %q, X-Trace %q", i, rec.bodies[i], rec.hosts[i], rec.traces[i])
		}
	}
	var out bytes.Buffer
	res.WriteSummary(&out, srv.URL, 4)
	for _, want := range []string{"target: POST " + srv.URL, "requests: 30 in ", "concurrency 4", "  201: 20\n", "  429: 10\n", "transport errors: 0", "latency: p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// The send rate is what the target saw, however long its answers take: 5
// requests paced at 20/s to a target that holds each one 300ms were sent
// over 200ms, at 20/s, although the run took at least 500ms.
func TestSendRateIgnoresLongAnswers(t *testing.T) {
	const hold = 300 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(hold): // the simulated latency of a slow webhook
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	res, err := RunHTTP(context.Background(), HTTP{URL: srv.URL, Concurrency: 5, Requests: 5, Rate: 20, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 5 {
		t.Fatalf("answered %d, want 5 (first error %v)", res.Answered, res.FirstErr)
	}
	if res.Elapsed < 200*time.Millisecond+hold {
		t.Errorf("elapsed %v, want at least %v", res.Elapsed, 200*time.Millisecond+hold)
	}
	if r := res.SendRate(); r < 14 || r > 26 {
		t.Errorf("send rate %.1f/s, want about 20/s (sending took %v)", r, res.Sending)
	}
	var out bytes.Buffer
	res.WriteSummary(&out, srv.URL, 5)
	if !strings.Contains(out.String(), "sent: ") || !strings.Contains(out.String(), "/s over ") {
		t.Errorf("summary lacks the send rate:\n%s", out.String())
	}
}

func TestDurationEndsTheRun(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
	}))
	defer srv.Close()
	res, err := RunHTTP(context.Background(), HTTP{URL: srv.URL, Concurrency: 2, Requests: MaxHTTPRequests, Duration: 200 * time.Millisecond, Rate: 50, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Requests != n || n < 1 || n > 20 {
		t.Errorf("%d requests counted, %d received in 200ms at 50/s; want the same, about 10", res.Requests, n)
	}
}

func TestTransportErrorsAreCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every connection is refused
	res, err := RunHTTP(context.Background(), HTTP{URL: "http://" + addr + "/", Concurrency: 1, Requests: 3, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || res.Answered != 0 || res.FirstErr == nil {
		t.Errorf("errors %d, answered %d, first %v; want 3, 0 and an error", res.Errors, res.Answered, res.FirstErr)
	}
	var out bytes.Buffer
	res.WriteSummary(&out, "x", 1)
	if !strings.Contains(out.String(), "transport errors: 3") || !strings.Contains(out.String(), "latency: no answers") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestOptionsOutOfBoundsAreRefused(t *testing.T) {
	good := HTTP{URL: "http://127.0.0.1:1/", Concurrency: 1, Requests: 1, Timeout: time.Second}
	tests := map[string]func(*HTTP){
		"concurrency 0":     func(o *HTTP) { o.Concurrency = 0 },
		"concurrency high":  func(o *HTTP) { o.Concurrency = MaxHTTPConcurrency + 1 },
		"requests 0":        func(o *HTTP) { o.Requests = 0 },
		"requests high":     func(o *HTTP) { o.Requests = MaxHTTPRequests + 1 },
		"duration too long": func(o *HTTP) { o.Duration = MaxHTTPDuration + 1 },
		"negative rate":     func(o *HTTP) { o.Rate = -1 },
		"timeout 0":         func(o *HTTP) { o.Timeout = 0 },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			o := good
			change(&o)
			if res, err := RunHTTP(context.Background(), o); err == nil || res != nil {
				t.Errorf("Run = %v, %v; want an error and no result", res, err)
			}
		})
	}
}

func TestNearestRank(t *testing.T) {
	if got := nearestRank(nil); got != (Percentiles{}) {
		t.Errorf("no answers: %+v, want zero", got)
	}
	var sorted []time.Duration
	for i := 1; i <= 10; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	want := Percentiles{P50: 5 * time.Millisecond, P90: 9 * time.Millisecond, P99: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	if got := nearestRank(sorted); got != want {
		t.Errorf("nearestRank(1..10ms) = %+v, want %+v", got, want)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, target := range []string{"http://localhost:1/", "http://127.0.0.2:1/", "http://[::1]:1/", "http://[::ffff:127.0.0.1]:1/"} {
		if err := CheckHTTPLoopback(context.Background(), target); err != nil {
			t.Errorf("CheckHTTPLoopback(%s) = %v, want nil", target, err)
		}
	}
	for _, target := range []string{"http://192.0.2.1/", "http://[2001:db8::1]:8478/x"} {
		if err := CheckHTTPLoopback(context.Background(), target); err == nil || !strings.Contains(err.Error(), "not loopback") {
			t.Errorf("CheckHTTPLoopback(%s) = %v, want a not-loopback error", target, err)
		}
	}
}
