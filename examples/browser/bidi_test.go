package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// firefoxPrefs go into the fresh profile's user.js: they keep headless
// Firefox off the network (no updates, telemetry, captive portal or
// connectivity checks, Remote Settings, safe browsing, DNS prefetch, DoH or
// proxy discovery), so the test's only connections are to the page's IP
// literal on loopback. Firefox's Remote Agent sets its own recommended
// prefs for automation on top; openInFirefox also sets
// MOZ_DISABLE_NONLOCAL_CONNECTIONS.
var firefoxPrefs = map[string]any{
	"app.update.disabledForTesting":                      true,
	"app.update.auto":                                    false,
	"app.normandy.enabled":                               false,
	"browser.shell.checkDefaultBrowser":                  false,
	"browser.startup.homepage_override.mstone":           "ignore",
	"browser.startup.page":                               0,
	"browser.newtabpage.enabled":                         false,
	"browser.safebrowsing.malware.enabled":               false,
	"browser.safebrowsing.phishing.enabled":              false,
	"browser.safebrowsing.downloads.enabled":             false,
	"browser.safebrowsing.blockedURIs.enabled":           false,
	"browser.region.network.url":                         "",
	"browser.search.update":                              false,
	"datareporting.healthreport.uploadEnabled":           false,
	"datareporting.policy.dataSubmissionEnabled":         false,
	"toolkit.telemetry.enabled":                          false,
	"toolkit.telemetry.server":                           "",
	"extensions.update.enabled":                          false,
	"extensions.getAddons.cache.enabled":                 false,
	"extensions.blocklist.enabled":                       false,
	"services.settings.server":                           "data:,#remote-settings-dummy/v1",
	"network.captive-portal-service.enabled":             false,
	"network.connectivity-service.enabled":               false,
	"network.dns.disablePrefetch":                        true,
	"network.dns.disableIPv6":                            true,
	"network.prefetch-next":                              false,
	"network.predictor.enabled":                          false,
	"network.http.speculative-parallel-limit":            0,
	"network.trr.mode":                                   5, // DNS over HTTPS off
	"network.proxy.type":                                 0, // direct, no proxy auto-detection
	"security.OCSP.enabled":                              0,
	"remote.active-protocols":                            1, // WebDriver BiDi
	"dom.disable_open_during_load":                       false,
	"geo.provider.network.url":                           "",
	"identity.fxaccounts.enabled":                        false,
	"privacy.resistFingerprinting.block_mozAddonManager": true,
}

// firefox returns Debian's firefox-esr, or skips the test (fails it when
// CI=true) when there is none.
func firefox(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("firefox-esr")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("firefox-esr not found on PATH; CI must install it (.ci/run does)")
		}
		t.Skip("firefox-esr not found on PATH: skipping the Firefox test")
	}
	return path
}

// bidi is a small WebDriver BiDi client on one browsing context of headless
// Firefox: enough to load a page, evaluate JavaScript in it and take a
// screenshot. Calls are sequential; the page's console errors and uncaught
// exceptions (log.entryAdded events) are kept for the test to check.
type bidi struct {
	ws      *websocket.Conn
	id      int
	context string

	mu     sync.Mutex
	errors []string // log entries of level error, in order
}

// call sends method with params and decodes the reply's result into out
// (when not nil). ctx bounds the wait for the reply.
func (b *bidi) call(ctx context.Context, method string, params, out any) error {
	b.id++
	if params == nil {
		params = map[string]any{}
	}
	if err := b.ws.WriteJSON(map[string]any{"id": b.id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = b.ws.SetReadDeadline(dl)
	}
	for {
		var msg struct {
			Type    string          `json:"type"`
			ID      int             `json:"id"`
			Method  string          `json:"method"`
			Params  json.RawMessage `json:"params"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if err := b.ws.ReadJSON(&msg); err != nil {
			return fmt.Errorf("bidi %s: %w", method, err)
		}
		if msg.Type == "event" {
			b.event(msg.Method, msg.Params)
			continue
		}
		if msg.ID != b.id {
			continue
		}
		if msg.Type == "error" {
			return fmt.Errorf("bidi %s: %s: %s", method, msg.Error, msg.Message)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, out)
	}
}

// event keeps a log entry of level error.
func (b *bidi) event(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e struct {
		Level string `json:"level"`
		Text  string `json:"text"`
		Type  string `json:"type"`
	}
	if json.Unmarshal(params, &e) != nil || e.Level != "error" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) < 100 {
		b.errors = append(b.errors, e.Type+": "+e.Text)
	}
}

// pageErrors returns the console errors and uncaught exceptions seen so far.
func (b *bidi) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// eval evaluates expr in the page, awaiting it when it is a promise, and
// decodes its value (passed through JSON.stringify, so JSON-able) into out
// (when not nil). A thrown exception is an error with its text.
func (b *bidi) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Type   string `json:"type"`
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	wrapped := fmt.Sprintf("(async () => JSON.stringify(await (%s)))()", expr)
	err := b.call(ctx, "script.evaluate", map[string]any{
		"expression": wrapped, "target": map[string]any{"context": b.context},
		"awaitPromise": true, "resultOwnership": "none", "userActivation": true,
	}, &res)
	if err != nil {
		return err
	}
	if res.Type == "exception" {
		text := "exception"
		if res.ExceptionDetails != nil {
			text = res.ExceptionDetails.Text
		}
		return fmt.Errorf("page: %s", text)
	}
	if out == nil || res.Result.Type != "string" {
		return nil
	}
	return json.Unmarshal([]byte(res.Result.Value), out)
}

// screenshot saves a PNG of the page's viewport to path.
func (b *bidi) screenshot(ctx context.Context, path string) error {
	var res struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": b.context}, &res); err != nil {
		return err
	}
	return writePNG(path, res.Data)
}

// openInFirefox starts headless Firefox on a fresh profile (firefoxPrefs)
// with WebDriver BiDi on a free loopback port, loads url, and returns a
// client on the page once it has loaded. Firefox is killed and waited for
// when the test ends.
func openInFirefox(t *testing.T, ctx context.Context, url string) *bidi {
	t.Helper()
	bin := firefox(t)
	profile := filepath.Join(t.TempDir(), "profile")
	if err := os.Mkdir(profile, 0o755); err != nil {
		t.Fatal(err)
	}
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		val, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, val)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-remote", "--profile", profile,
		"--remote-debugging-port=0", "--remote-allow-hosts=127.0.0.1", "--width=1400", "--height=1000", "about:blank")
	// MOZ_DISABLE_NONLOCAL_CONNECTIONS, Firefox's own test switch, refuses
	// every connection (and DNS query) off loopback: the prefs alone still
	// let Remote Settings resolve its host name at start.
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_DISABLE_AUTO_SAFE_MODE=1", "MOZ_DISABLE_NONLOCAL_CONNECTIONS=1")
	// Firefox says where BiDi listens on stderr (some builds: stdout), then
	// keeps logging: both are read (and kept for a failure's message) until
	// it exits.
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start firefox: %v", err)
	}
	exited := make(chan struct{})
	found := make(chan string, 1)
	var log strings.Builder
	var logMu sync.Mutex
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			if log.Len() < 64<<10 {
				log.WriteString(line + "\n")
			}
			logMu.Unlock()
			if u, ok := strings.CutPrefix(line, "WebDriver BiDi listening on "); ok {
				select {
				case found <- u:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
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
	firefoxLog := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return log.String()
	}
	var wsURL string
	select {
	case wsURL = <-found:
	case <-exited:
		t.Fatalf("firefox exited before WebDriver BiDi listened; log:\n%s", firefoxLog())
	case <-ctx.Done():
		t.Fatalf("firefox did not start WebDriver BiDi in time; log:\n%s", firefoxLog())
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, strings.TrimSuffix(wsURL, "/")+"/session", nil)
	if err != nil {
		t.Fatalf("WebDriver BiDi socket: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	b := &bidi{ws: ws}
	if err := b.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil); err != nil {
		t.Fatal(err)
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := b.call(ctx, "browsingContext.getTree", nil, &tree); err != nil {
		t.Fatal(err)
	}
	if len(tree.Contexts) == 0 {
		t.Fatal("firefox has no browsing context")
	}
	b.context = tree.Contexts[0].Context
	if err := b.call(ctx, "browsingContext.navigate", map[string]any{"context": b.context, "url": url, "wait": "complete"}, nil); err != nil {
		t.Fatalf("load %s in firefox: %v", url, err)
	}
	return b
}
