package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

var webhookCmd = &command{
	name:     "webhook",
	synopsis: `[-name NAME | -url URL] [-c N] [-n N | -d DURATION] [-rate R] [-body S | -body-file FILE] [-H "Name: value"]`,
	summary:  "send load to a webhook and print status counts and latencies",
	doc: `Sends POST requests to a webhook of a running stunfault (or any loopback
URL) and prints status counts and latencies. The target must be loopback
unless -allow-remote is given.`,
	run: runWebhook,
}

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t") {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	*h = append(*h, v)
	return nil
}

// runWebhook is `stunfault webhook`.
func runWebhook(ctx context.Context, inv *invocation) error {
	o, allowRemote, err := parseWebhookFlags(inv)
	if err != nil {
		return err
	}
	if !allowRemote {
		if err := loadgen.CheckHTTPLoopback(ctx, o.URL); err != nil {
			return inputErrorf("webhook: %v; pass -allow-remote to send to it anyway", err)
		}
	}
	if isTerminal(inv.stdout) {
		o.Progress = inv.stdout
	}
	res, err := loadgen.RunHTTP(ctx, o)
	if err != nil {
		return err
	}
	res.WriteSummary(inv.stdout, o.URL, o.Concurrency)
	if res.Requests > 0 && res.Answered == 0 {
		return fmt.Errorf("webhook: all %d requests failed: %w", res.Requests, res.FirstErr)
	}
	if n := res.Statuses[http.StatusNotFound] + res.Statuses[http.StatusMethodNotAllowed]; n > 0 && n == res.Answered {
		// Every answer says the target is wrong: not a webhook at all.
		status := http.StatusNotFound
		if res.Statuses[status] == 0 {
			status = http.StatusMethodNotAllowed
		}
		return fmt.Errorf("webhook: POST %s answered %d %s: is there a webhook of that name ([webhooks.NAME] in the server's config)?",
			o.URL, status, http.StatusText(status))
	}
	return nil
}

func parseWebhookFlags(inv *invocation) (loadgen.HTTP, bool, error) {
	fs := inv.flags()
	httpAddr := fs.String("http", "127.0.0.1:8478", "`address` of stunfault's HTTP side")
	name := fs.String("name", "servicenow", "webhook `name` (POST /webhook/NAME)")
	rawURL := fs.String("url", "", "target `URL` (overrides -http and -name)")
	c := fs.Int("c", 1, fmt.Sprintf("concurrent requests (1 to %d)", loadgen.MaxHTTPConcurrency))
	n := fs.Int("n", 1, fmt.Sprintf("total requests (1 to %d)", loadgen.MaxHTTPRequests))
	d := fs.Duration("d", 0, fmt.Sprintf("send for this long (at most %v); with -n, stop at whichever comes first", loadgen.MaxHTTPDuration))
	rate := fs.Float64("rate", 0, "requests per second overall (0 = as fast as possible)")
	body := fs.String("body", "", "request body")
	bodyFile := fs.String("body-file", "", "read the request body from `FILE` (- = stdin)")
	var headers headerFlags
	fs.Var(&headers, "H", "extra request header \"Name: value\" (repeatable)")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	allowRemote := fs.Bool("allow-remote", false, "allow a target that is not loopback")
	if _, err := fs.parse(inv.args, 0, 0, "no arguments"); err != nil {
		return loadgen.HTTP{}, false, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := loadgen.HTTP{Concurrency: *c, Requests: *n, Duration: *d, Rate: *rate, Timeout: *timeout, Header: http.Header{}}
	switch {
	case o.Concurrency < 1 || o.Concurrency > loadgen.MaxHTTPConcurrency:
		return o, false, inv.usageErrorf("-c must be between 1 and %d, got %d", loadgen.MaxHTTPConcurrency, o.Concurrency)
	case o.Requests < 1 || o.Requests > loadgen.MaxHTTPRequests:
		return o, false, inv.usageErrorf("-n must be between 1 and %d, got %d", loadgen.MaxHTTPRequests, o.Requests)
	case set["d"] && (o.Duration <= 0 || o.Duration > loadgen.MaxHTTPDuration):
		return o, false, inv.usageErrorf("-d must be more than 0 and at most %v, got %v", loadgen.MaxHTTPDuration, o.Duration)
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0:
		return o, false, inv.usageErrorf("-rate must be 0 (as fast as possible) or more, got %v", o.Rate)
	case o.Timeout <= 0:
		return o, false, inv.usageErrorf("-timeout must be more than 0, got %v", o.Timeout)
	case set["body"] && set["body-file"]:
		return o, false, inv.usageErrorf("give -body or -body-file, not both")
	}
	if set["d"] && !set["n"] {
		o.Requests = loadgen.MaxHTTPRequests // -d alone: the duration decides
	}

	o.Body = []byte(*body)
	if *bodyFile != "" {
		b, err := readBodyFile(inv, *bodyFile)
		if err != nil {
			return o, false, err
		}
		o.Body = b
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			o.Host = v
			continue
		}
		o.Header.Add(k, v)
	}

	o.URL = *rawURL
	if o.URL == "" {
		o.URL = "http://" + *httpAddr + "/webhook/" + url.PathEscape(*name)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return o, false, &inputError{msg: fmt.Sprintf("webhook: bad target URL: %v", err), err: err}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, false, inv.usageErrorf("target URL %q: want http://HOST[:PORT]/...", o.URL)
	}
	return o, *allowRemote, nil
}

// readBodyFile reads -body-file: a file, or stdin for "-", at most
// loadgen.MaxHTTPBodyBytes.
func readBodyFile(inv *invocation, path string) ([]byte, error) {
	r := inv.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, &inputError{msg: fmt.Sprintf("webhook: -body-file: %v", err), err: err}
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, loadgen.MaxHTTPBodyBytes+1))
	if err != nil {
		return nil, &inputError{msg: fmt.Sprintf("webhook: -body-file: %v", err), err: err}
	}
	if len(b) > loadgen.MaxHTTPBodyBytes {
		return nil, inputErrorf("webhook: -body-file: larger than %d bytes", loadgen.MaxHTTPBodyBytes)
	}
	return b, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
