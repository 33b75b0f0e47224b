package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"

	"github.com/stunfault/stunfault/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// portZeroConfig is a config on free loopback ports.
const portZeroConfig = `
[[listen]]
transport = "udp"
address = "127.0.0.1:0"

[[listen]]
transport = "tcp"
address = "127.0.0.1:0"

[http]
address = "127.0.0.1:0"
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// banner is what `stunfault serve` printed once listening.
type banner struct {
	stun, turnUDP, turnTCP, http string
	text                         string
}

// startRun runs `stunfault args...` in the background until the test ends,
// and returns its banner once every socket is bound.
func startRun(t *testing.T, args ...string) banner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, &stderr)
		_ = pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run ended with %v (exit status %d), want nil", err, exitCode(err))
		}
	})

	var b banner
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		b.text += line + "\n"
		f := strings.Fields(line)
		switch {
		case len(f) < 2:
		case f[0] == "STUN":
			b.stun = strings.TrimPrefix(f[1], "stun:")
		case f[0] == "TURN" && strings.HasSuffix(f[1], "?transport=udp"):
			b.turnUDP = strings.TrimSuffix(strings.TrimPrefix(f[1], "turn:"), "?transport=udp")
		case f[0] == "TURN" && strings.HasSuffix(f[1], "?transport=tcp"):
			b.turnTCP = strings.TrimSuffix(strings.TrimPrefix(f[1], "turn:"), "?transport=tcp")
		case f[0] == "HTTP":
			b.http = strings.TrimPrefix(f[1], "http://")
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return b
		}
	}
	t.Fatalf("run ended before printing its banner; stdout:\n%s\nstderr:\n%s", b.text, stderr.String())
	return b
}

func TestServePrintsRealPortsAndSecondInstanceFails(t *testing.T) {
	cfgPath := writeFile(t, "stunfault.toml", portZeroConfig)
	b := startRun(t, "-config", cfgPath, "-log-level", "warn")
	for name, addr := range map[string]string{"stun": b.stun, "turn udp": b.turnUDP, "turn tcp": b.turnTCP, "http": b.http} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			t.Fatalf("%s address %q in banner is not a real port:\n%s", name, addr, b.text)
		}
	}
	if !strings.Contains(b.text, "user/pass") {
		t.Errorf("banner does not print the credentials:\n%s", b.text)
	}
	if !strings.Contains(b.text, "  dashboard http://"+b.http+"/ ") {
		t.Errorf("banner does not print the dashboard's URL:\n%s", b.text)
	}

	// What was printed is really served.
	c, err := stun.Dial("udp", b.stun)
	if err != nil {
		t.Fatal(err)
	}
	var code stun.MessageType
	if err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
		if e.Error == nil {
			code = e.Message.Type
		}
	}); err != nil {
		t.Fatalf("Binding to the printed STUN URL: %v", err)
	}
	_ = c.Close()
	if code != stun.BindingSuccess {
		t.Errorf("Binding to %s: got %v, want a success response", b.stun, code)
	}

	// A second instance on the same ports fails clearly, with status 1.
	second := writeFile(t, "second.toml", `
[[listen]]
transport = "udp"
address = "`+b.turnUDP+`"

[[listen]]
transport = "tcp"
address = "`+b.turnTCP+`"

[http]
address = "127.0.0.1:0"
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"-config", second}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second instance: got %v, want an \"address already in use\" error", err)
	}
	if got := exitCode(err); got != 1 {
		t.Errorf("second instance exit status = %d, want 1", got)
	}
	if !strings.Contains(err.Error(), b.turnUDP) {
		t.Errorf("error %q does not name the address %s", err, b.turnUDP)
	}
}

func TestServeHTTPAddressInUse(t *testing.T) {
	b := startRun(t, "-config", writeFile(t, "a.toml", portZeroConfig), "-log-level", "warn")
	cfg := writeFile(t, "b.toml", strings.Replace(portZeroConfig, `[http]
address = "127.0.0.1:0"`, `[http]
address = "`+b.http+`"`, 1))
	err := run(context.Background(), []string{"serve", "-config", cfg}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "http.address") || exitCode(err) != 1 {
		t.Fatalf("got %v (status %d), want an http.address error with status 1", err, exitCode(err))
	}
}

func TestCheck(t *testing.T) {
	good := writeFile(t, "good.toml", portZeroConfig)
	bad := writeFile(t, "bad.toml", `[server]
realm = "x"
bogus = 1

[relay]
min_port = 70000
`)
	clash := writeFile(t, "clash.toml", `[[listen]]
transport = "udp"
address = "127.0.0.1:3478"
[[listen]]
transport = "udp"
address = "localhost:3478"
[http]
address = "127.0.0.1:3478"
[[listen]]
transport = "tcp"
address = "127.0.0.1:3478"
[webhooks.crm]
jitter = "1281024h"
`)
	lan := writeFile(t, "lan.toml", `[[listen]]
transport = "udp"
address = "0.0.0.0:3478"
`)
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantOut    []string
	}{
		{"good file", []string{"check", good}, 0, []string{good + ": OK"}},
		{"bad file", []string{"check", bad}, 2, []string{":3:", "server.bogus", ":6:", "relay.min_port"}},
		{"what serve cannot bind, and a huge jitter", []string{"check", clash}, 2, []string{
			clash + ":6: listen[1].address: localhost:3478 is 127.0.0.1:3478, which listen[0] (udp 127.0.0.1:3478) binds too",
			clash + ":8: http.address: 127.0.0.1:3478 is listen[2]'s address too (tcp 127.0.0.1:3478), so serve could not bind both",
			clash + ":13: webhooks.crm.jitter: must be between 0s and 1h0m0s, got 1281024h0m0s",
		}},
		{"built-in user on a LAN", []string{"check", lan}, 2, []string{lan + ":3: users[0]: the built-in credential user/pass is refused when listen[0].address (0.0.0.0:3478) is not loopback"}},
		{"missing file", []string{"check", filepath.Join(t.TempDir(), "nope.toml")}, 2, []string{"nope.toml"}},
		{"no file", []string{"check"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, &out, io.Discard)
			if got := exitCode(err); got != tt.wantStatus {
				t.Fatalf("exit status = %d (err %v), want %d; output:\n%s", got, err, tt.wantStatus, out.String())
			}
			text := out.String()
			if err != nil {
				text += err.Error()
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(text, w) {
					t.Errorf("output does not contain %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := map[string][]string{
		"unknown command":    {"frobnicate"},
		"unknown flag":       {"serve", "-nope"},
		"bad log level":      {"-log-level", "loud"},
		"bad log format":     {"-log-format", "xml"},
		"stray argument":     {"serve", "extra"},
		"config file absent": {"-config", "/nonexistent/stunfault.toml"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), args, io.Discard, io.Discard)
			if got := exitCode(err); got != 2 {
				t.Errorf("run(%q) = %v, exit status %d, want 2", args, err, got)
			}
		})
	}
}

// The embedded default names the well-known ports; tests never bind them.
func TestDefaultConfigUsesWellKnownPorts(t *testing.T) {
	cfg := config.Default()
	want := map[string]string{"udp": "127.0.0.1:3478", "tcp": "127.0.0.1:3478"}
	if len(cfg.Listen) != 2 {
		t.Fatalf("default listeners = %+v, want udp and tcp", cfg.Listen)
	}
	for _, l := range cfg.Listen {
		if want[l.Transport] != l.Address {
			t.Errorf("default %s listener on %s, want %s", l.Transport, l.Address, want[l.Transport])
		}
	}
	if cfg.HTTP.Address != "127.0.0.1:8478" {
		t.Errorf("default http.address = %s, want 127.0.0.1:8478", cfg.HTTP.Address)
	}
}

const scenarioConfig = portZeroConfig + `
[scenarios.forbidden]
description = "every Binding gets 403"
[[scenarios.forbidden.rules]]
id = "binding-403"
[scenarios.forbidden.rules.match]
methods = ["binding"]
[scenarios.forbidden.rules.action]
type = "error"
code = 403
reason = "Forbidden"
`

func TestServeScenarioFlag(t *testing.T) {
	cfgPath := writeFile(t, "scenario.toml", scenarioConfig)
	b := startRun(t, "-config", cfgPath, "-scenario", "forbidden", "-log-level", "warn")
	if !strings.Contains(b.text, `scenario "forbidden"`) {
		t.Errorf("banner does not name the scenario:\n%s", b.text)
	}
	c, err := stun.Dial("udp", b.stun)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got stun.ErrorCodeAttribute
	if err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
		if e.Error == nil {
			_ = got.GetFrom(e.Message)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if got.Code != 403 {
		t.Errorf("Binding under scenario forbidden: code %d, want 403", got.Code)
	}

	err = run(context.Background(), []string{"-config", cfgPath, "-scenario", "nope"}, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("unknown scenario: got %v (status %d), want status 2 naming the known scenarios", err, exitCode(err))
	}
}

// The CLI drives a real running stunfault: a rule added with
// `stunfault rules add` makes the next Binding fail, `rules list` shows it
// with its counters, and `rules clear` disarms it.
func TestCLIDrivesARunningServer(t *testing.T) {
	b := startRun(t, "-config", writeFile(t, "cli.toml", portZeroConfig), "-log-level", "warn")
	control := "ws://" + b.http + "/control"
	rules := writeFile(t, "rules.toml", `
[[rules]]
id = "cli-403"
match = { methods = ["binding"] }
action = { type = "error", code = 403, reason = "Forbidden" }
`)
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append(args, "-control", control), &out, &errOut); err != nil {
			t.Fatalf("stunfault %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}
	binding := func() uint16 {
		t.Helper()
		c, err := stun.Dial("udp", b.stun)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var code stun.ErrorCodeAttribute
		if err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
			if e.Error == nil {
				_ = code.GetFrom(e.Message)
			}
		}); err != nil {
			t.Fatal(err)
		}
		return uint16(code.Code)
	}

	cli("rules", "add", rules)
	if got := binding(); got != 403 {
		t.Errorf("after `rules add`: Binding code %d, want 403", got)
	}
	if out := cli("rules", "list"); !strings.Contains(out, "cli-403") {
		t.Errorf("`rules list` does not show the rule:\n%s", out)
	}
	if out := cli("journal", "count", "-rule", "cli-403"); !strings.Contains(out, "1") {
		t.Errorf("`journal count` = %q, want 1", out)
	}
	cli("rules", "clear")
	if got := binding(); got != 0 {
		t.Errorf("after `rules clear`: Binding code %d, want success", got)
	}
}
