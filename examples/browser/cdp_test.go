package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// cdp is a small client of the Chrome DevTools Protocol on one page
// target: enough to evaluate JavaScript in the page and take a screenshot.
// Calls are sequential; events the browser sends in between are skipped.
type cdp struct {
	ws *websocket.Conn
	id int
}

// cdpError is an error the browser answered a call with.
type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("cdp: %d %s", e.Code, e.Message) }

// call sends method with params and decodes the reply's result into out
// (when not nil). ctx bounds the wait for the reply.
func (c *cdp) call(ctx context.Context, method string, params, out any) error {
	c.id++
	if err := c.ws.WriteJSON(map[string]any{"id": c.id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("cdp %s: %w", method, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.ws.SetReadDeadline(dl)
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *cdpError       `json:"error"`
		}
		if err := c.ws.ReadJSON(&msg); err != nil {
			return fmt.Errorf("cdp %s: %w", method, err)
		}
		if msg.ID != c.id {
			continue // an event
		}
		if msg.Error != nil {
			return fmt.Errorf("cdp %s: %w", method, msg.Error)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, out)
	}
}

// eval evaluates expr in the page, awaiting it when it is a promise, and
// decodes its value (returned by value, so JSON-able) into out (when not
// nil). A thrown exception is an error with its text.
func (c *cdp) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := c.call(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true, "userGesture": true,
	}, &res)
	if err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("page: %s %s", e.Text, e.Exception.Description)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// navigate loads url in the page and returns once its load event fired
// (its module scripts have run).
func (c *cdp) navigate(ctx context.Context, url string) error {
	if err := c.call(ctx, "Page.enable", nil, nil); err != nil {
		return err
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return err
	}
	if nav.ErrorText != "" {
		return fmt.Errorf("cdp: navigate %s: %s", url, nav.ErrorText)
	}
	for {
		var msg struct {
			Method string `json:"method"`
		}
		if err := c.ws.ReadJSON(&msg); err != nil {
			return fmt.Errorf("cdp: waiting for %s to load: %w", url, err)
		}
		if msg.Method == "Page.loadEventFired" {
			return nil
		}
	}
}

// screenshot saves a PNG of the page to path.
func (c *cdp) screenshot(ctx context.Context, path string) error {
	var res struct {
		Data string `json:"data"`
	}
	if err := c.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res); err != nil {
		return err
	}
	return writePNG(path, res.Data)
}

// writePNG writes a screenshot both browsers' protocols return as base64.
func writePNG(path, b64 string) error {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

// openInChromium starts headless Chromium with the DevTools protocol on a
// free loopback port, loads url, and returns a client on the page once it
// has loaded.
// Chromium is killed and waited for when the test ends.
func openInChromium(t *testing.T, ctx context.Context, url string) *cdp {
	t.Helper()
	bin := chromium(t)
	dir := t.TempDir()
	args := append([]string{"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1400,1000"},
		chromiumFlags...)
	cmd := exec.Command(bin, append(args, "about:blank")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan struct{})
	// Chromium says where DevTools listen on stderr, then keeps logging:
	// the rest is read (and kept for a failure's message) until it exits.
	found := make(chan string, 1)
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if len(log.String()) < 64<<10 {
				log.WriteString(line + "\n")
			}
			if u, ok := strings.CutPrefix(line, "DevTools listening on "); ok {
				found <- u
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-logDone
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		killProcessGroup(cmd)
		<-exited
	})
	var browserURL string
	select {
	case browserURL = <-found:
	case <-exited:
		t.Fatalf("chromium exited before DevTools listened; log:\n%s", log.String())
	case <-ctx.Done():
		t.Fatal("chromium did not start DevTools in time")
	}
	// The page target: GET /json/list on the DevTools port.
	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/json/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("DevTools /json/list: %v", err)
	}
	defer res.Body.Close()
	var targets []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		WSURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(res.Body).Decode(&targets); err != nil {
		t.Fatalf("DevTools /json/list: %v", err)
	}
	for _, tg := range targets {
		if tg.Type == "page" {
			ws, _, err := websocket.DefaultDialer.DialContext(ctx, tg.WSURL, nil)
			if err != nil {
				t.Fatalf("DevTools page socket: %v", err)
			}
			t.Cleanup(func() { _ = ws.Close() })
			c := &cdp{ws: ws}
			if err := c.navigate(ctx, url); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("no page target among %+v", targets)
	return nil
}

// dumpDOM runs `chromium --headless --dump-dom url` and returns the DOM
// once the page has loaded (its module scripts have run).
func dumpDOM(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	bin := chromium(t)
	args := append([]string{"--user-data-dir=" + filepath.Join(t.TempDir(), "profile"), "--dump-dom"}, chromiumFlags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	setProcessGroup(cmd)
	cmd.Cancel = func() error {
		killProcessGroup(cmd)
		return nil
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, errOut.String())
	}
	killProcessGroup(cmd) // its helpers, if any outlived it
	return out.String()
}

// saveArtifact copies the file at path into $STUNFAULT_ARTIFACTS, when set,
// so CI keeps it.
func saveArtifact(t *testing.T, path string) {
	t.Helper()
	dir := os.Getenv("STUNFAULT_ARTIFACTS")
	if dir == "" {
		t.Logf("saved %s (set STUNFAULT_ARTIFACTS to keep it)", path)
		return
	}
	b, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	dst := filepath.Join(dir, t.Name()+"-"+filepath.Base(path))
	if err == nil {
		err = os.WriteFile(dst, b, 0o644)
	}
	if err != nil {
		t.Errorf("artifact %s: %v", path, err)
		return
	}
	t.Logf("saved %s", dst)
}

// waitTimeout bounds one wait in the page for what the page promises to
// show (a reply re-rendered, a polled trace page drawn).
const waitTimeout = 10 * time.Second
