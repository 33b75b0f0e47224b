package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

var captureCmd = &command{
	name:     "capture",
	synopsis: "-o FILE [-d DURATION] [-n COUNT] [-rule ID] [-method M] [-label K=V] ...",
	summary:  "write what the server saw as a pcapng file Wireshark reads",
	doc: `Writes the messages of a running stunfault as pcapng (GET /capture.pcapng):
each in synthetic IP and UDP or TCP headers with the real addresses and
ports, the decision (rule, action, code, journal seq, seed) in its comment,
and for a message stunfault changed both the bytes received and sent.
Without -d it writes what the trace holds now; with -d it captures live
from now for DURATION (at most 10m), ending early at -n COUNT messages or
on Ctrl-C. -o - writes to standard output.`,
	run: runCapture,
}

// runCapture is `stunfault capture`.
func runCapture(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	qf := fs.queryFlags()
	out := fs.String("o", "", "write the capture to `FILE` (- for standard output)")
	dur := fs.Duration("d", 0, "capture live for `DURATION` from now (0: what the trace holds)")
	count := fs.Int("n", 0, "stop after `COUNT` messages (0: no limit)")
	since := fs.Uint64("since", 0, "only messages after this trace `seq`")
	if _, err := fs.parse(inv.args, 0, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return inv.usageErrorf("-o FILE is required")
	}
	base, err := httpBase(cf.url)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *dur != 0 {
		q.Set("d", dur.String())
	}
	if *count != 0 {
		q.Set("n", strconv.Itoa(*count))
	}
	if *since != 0 {
		q.Set("since", strconv.FormatUint(*since, 10))
	}
	fq := qf.query()
	for k, v := range map[string]string{"rule": fq.Rule, "method": fq.Method, "class": fq.Class,
		"transport": fq.Transport, "direction": fq.Direction, "client": fq.Client} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range fq.Labels {
		q.Add("label", k+"="+v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/capture.pcapng?"+q.Encode(), nil)
	if err != nil {
		return inputErrorf("capture: %v", err)
	}
	token := cf.token
	if token == "" {
		token = os.Getenv("STUNFAULT_TOKEN")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach stunfault at %s: %w", base, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		text := strings.TrimSpace(string(msg))
		if res.StatusCode == http.StatusUnauthorized {
			text += "; pass the server's [http] token with -token TOKEN or set STUNFAULT_TOKEN"
		}
		if res.StatusCode < 500 {
			return inputErrorf("%s", text)
		}
		return errors.New(text)
	}
	var w io.Writer = inv.stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return inputErrorf("capture: %v", err)
		}
		defer f.Close()
		w = f
	}
	n, err := io.Copy(w, res.Body)
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("capture: %w", err)
	}
	if *out != "-" {
		fmt.Fprintf(inv.stderr, "wrote %d bytes to %s\n", n, *out)
	}
	return nil
}

// httpBase turns a control URL (ws://HOST:PORT/control) into the HTTP
// side's base URL (http://HOST:PORT).
func httpBase(control string) (string, error) {
	u, err := url.Parse(control)
	if err != nil || u.Host == "" {
		return "", inputErrorf("-control %q: want ws://HOST:PORT/control (or http://HOST:PORT)", control)
	}
	switch u.Scheme {
	case "ws", "http":
		return "http://" + u.Host, nil
	case "wss", "https":
		return "https://" + u.Host, nil
	}
	return "", inputErrorf("-control %q: want ws://HOST:PORT/control (or http://HOST:PORT)", control)
}
