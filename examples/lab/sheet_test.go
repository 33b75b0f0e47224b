//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stunfault/stunfault/server/servertest"
)

// commandTimeout bounds each command of the sheet: every one ends by itself
// well within it (the longest, level 3's uclient, runs under `timeout 20`),
// so reaching it means the sheet has a command that does not.
const commandTimeout = 40 * time.Second

// TestSheet does every level of the exercise sheet, README.md, as a student
// would: it runs the level's commands exactly as written, with coturn's
// tools, and checks that their output has the lines the sheet says to look
// for, in order. The levels run in parallel, each on its own server.
//
// Tests bind no fixed port, so the commands' text is changed in these
// places only, each pointing at what this test started instead of the
// sheet's fixed ports:
//   - the serve line `go run . -config examples/lab/lab.toml -scenario
//     levelN` is servertest with lab.toml on free ports and levelN active;
//   - `go run . CMD` is a stunfault built once from this repository, with
//     `-control URL` (`-http ADDR` for webhook) added after CMD;
//   - turnutils_stunclient and turnutils_uclient get `-p PORT` for the
//     level's server (the sheet's `-p 3477`, a port nothing listens on,
//     becomes another such port), and `-r 3480` the echo peer's port: the
//     sheet's `turnutils_peer -L 127.0.0.1 -p 3480 &` on a free port.
//
// A line ending in `&` (a screen pop, `go run . webhook ... &`) runs in the
// background, and the test waits until the webhook holds the call, as a
// student typing the next line gives it time to; `wait $!` waits for the
// last background command and adds its output there.
func TestSheet(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"turnutils_stunclient", "turnutils_uclient", "turnutils_peer", "timeout", "bash"} {
		needTool(t, tool)
	}
	sheet := readSheet(t)
	cfg := loadLab(t)
	env := sheetEnv{
		bin:    buildStunfault(t),
		peer:   startEchoPeer(t),
		closed: closedPort(t),
	}
	for _, lv := range sheet {
		t.Run(lv.name, func(t *testing.T) {
			t.Parallel()
			if want := "go run . -config examples/lab/lab.toml -scenario " + lv.name; lv.serve != want {
				t.Fatalf("README.md:%d: the serve line is %q, want %q", lv.line, lv.serve, want)
			}
			env := env
			env.srv = servertest.New(t, servertest.WithConfig(cfg))
			if _, err := env.srv.Faults().ActivateScenario(lv.name); err != nil {
				t.Fatal(err)
			}
			out, transcript := env.runAll(t, lv.run)
			if w := missing(out, lv.want); w != "" {
				t.Errorf("README.md:%d: the sheet says to look for %q (after the lines before it); the commands printed:\n%s", lv.line, w, transcript)
			}
		})
	}
}

// sheetEnv is what the sheet's commands point at in a test.
type sheetEnv struct {
	bin    string // stunfault, built from this repository
	peer   int    // turnutils_peer's port
	closed int    // a port nothing listens on
	srv    *servertest.Server
}

var (
	stunfaultCmd = regexp.MustCompile(`\bgo run \. (journal(?: (?:query|count|verify))?|stats|events|webhook)\b`)
	turnutilsCmd = regexp.MustCompile(`\bturnutils_(?:stunclient|uclient)\b`)
	sheetPorts   = regexp.MustCompile(`\b(3477|3478|3480|8478)\b`)
)

// localize rewrites one command of the sheet to point at the test's
// server, peer and closed port (see TestSheet).
func (e sheetEnv) localize(line string) (string, error) {
	out := stunfaultCmd.ReplaceAllStringFunc(line, func(m string) string {
		cmd := strings.TrimPrefix(m, "go run . ")
		if cmd == "webhook" {
			return e.bin + " webhook -http " + e.srv.HTTPAddr().String()
		}
		return e.bin + " " + cmd + " -control " + e.srv.ControlURL()
	})
	if strings.Contains(out, "go run .") {
		return "", fmt.Errorf("%q: the test knows how to run go run . journal, stats, events and webhook, not this", line)
	}
	if turnutilsCmd.MatchString(out) {
		out = strings.ReplaceAll(out, " -r 3480 ", " -r "+strconv.Itoa(e.peer)+" ")
		if strings.Contains(out, " -p 3477 ") {
			out = strings.ReplaceAll(out, " -p 3477 ", " -p "+strconv.Itoa(e.closed)+" ")
		} else {
			port := strconv.Itoa(int(e.srv.TURNAddr("udp").Port()))
			out = turnutilsCmd.ReplaceAllString(out, "$0 -p "+port)
		}
	}
	if m := sheetPorts.FindString(out); m != "" {
		return "", fmt.Errorf("%q: port %s is left after rewriting it to %q; the test does not know what it stands for", line, m, out)
	}
	return out, nil
}

// runAll runs a level's commands in order, each in its own bash from the
// repository root, and returns their output, and a transcript with each
// command before its output for failure messages.
func (e sheetEnv) runAll(t *testing.T, lines []string) (out, transcript string) {
	t.Helper()
	var o, tr strings.Builder
	var bg []*exec.Cmd
	var bgOut []*bytes.Buffer
	for _, l := range lines {
		l = stripComment(l)
		if l == "" {
			continue
		}
		if l == "wait $!" {
			fmt.Fprintf(&tr, "$ %s\n", l)
			if len(bg) == 0 {
				t.Fatalf("%q with no background command before it", l)
			}
			c, buf := bg[len(bg)-1], bgOut[len(bg)-1]
			bg, bgOut = bg[:len(bg)-1], bgOut[:len(bg)-1]
			err := c.Wait()
			o.Write(buf.Bytes())
			tr.Write(buf.Bytes())
			if err != nil {
				t.Errorf("%s: %v", c.Args[2], err)
			}
			continue
		}
		line, background := strings.CutSuffix(l, "&")
		cmdline, err := e.localize(strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&tr, "$ %s\n", l)
		if background {
			c, buf := e.start(t, cmdline)
			bg, bgOut = append(bg, c), append(bgOut, buf)
			e.waitHeld(t, l, c, buf)
			continue
		}
		c, buf := e.start(t, cmdline)
		err = c.Wait()
		o.Write(buf.Bytes())
		tr.Write(buf.Bytes())
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) || c.ProcessState != nil && !c.ProcessState.Exited() {
			t.Fatalf("%s did not end by itself within %v: %v\n%s", l, commandTimeout, err, tr.String())
		}
	}
	return o.String(), tr.String()
}

// start starts bash -c cmdline in its own process group, killed (group and
// all) after commandTimeout or when the test ends.
func (e sheetEnv) start(t *testing.T, cmdline string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	c := exec.CommandContext(ctx, "bash", "-c", cmdline)
	c.Dir = filepath.Join("..", "..")
	c.Env = append(os.Environ(), "STUNFAULT_TOKEN=")
	buf := new(bytes.Buffer)
	c.Stdout, c.Stderr = buf, buf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	if err := c.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = c.Wait() // the background ones not waited for; an error already returned for the others
	})
	return c, buf
}

// waitHeld waits, woken by the webhook's own changes, until the webhook
// holds the call the background command l makes. l must be a screen pop.
func (e sheetEnv) waitHeld(t *testing.T, l string, c *exec.Cmd, buf *bytes.Buffer) {
	t.Helper()
	if !strings.Contains(l, "go run . webhook") {
		t.Fatalf("%q: the test can run `go run . webhook ... &` in the background, not this", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	hub := e.srv.Webhooks()
	if err := hub.Wait(ctx, func() bool { return hub.Inflight("servicenow") > 0 }); err != nil {
		_ = c.Cancel()
		_ = c.Wait()
		t.Fatalf("%s: the webhook holds no call after %v:\n%s", l, wait, buf)
	}
}

// stripComment removes a shell comment (from a # that starts a word, out
// of quotes) and the spaces around the command.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return strings.TrimSpace(l[:i])
		}
	}
	return strings.TrimSpace(l)
}

// buildStunfault builds this repository's stunfault command into the
// test's temporary directory: the same code as the sheet's `go run .`,
// compiled once for every level.
func buildStunfault(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found: the test builds stunfault with it: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "stunfault")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".")
	c.Dir = filepath.Join("..", "..")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build stunfault: %v\n%s", err, out)
	}
	return bin
}

// needTool returns the path of a tool the sheet uses, skipping the test
// when it is not installed (and failing it in CI, where it must be).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found in CI: .ci/run must install coturn", name)
		}
		t.Skipf("%s not found: install coturn's client tools (apt-get install coturn) to run the sheet's commands", name)
	}
	return p
}

// startEchoPeer starts the sheet's echo peer, turnutils_peer, on a free
// loopback port and returns the port once the peer answers.
func startEchoPeer(t *testing.T) int {
	t.Helper()
	bin := needTool(t, "turnutils_peer")
	for range 5 {
		port := closedPort(t)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		stop := func() { cancel(); _ = cmd.Wait() }
		if echoes(t, port) {
			t.Cleanup(stop)
			return port
		}
		stop() // the port was taken in between; try another
	}
	t.Fatal("turnutils_peer did not answer on any port")
	return 0
}

// echoes reports whether a UDP echo server answers on 127.0.0.1:port, asking
// a bounded number of times while it starts. The socket is unconnected so
// that ICMP "port unreachable" from a peer still starting does not turn the
// 100 ms waits for a reply into instant errors.
func echoes(t *testing.T, port int) bool {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	buf := make([]byte, 64)
	for range 50 {
		if _, err := c.WriteTo([]byte("ping"), to); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := c.ReadFrom(buf); err == nil && string(buf[:n]) == "ping" {
			return true
		}
	}
	return false
}

// closedPort returns a loopback UDP port that was free a moment ago: bound
// to port 0, read back, and closed again.
func closedPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	_ = c.Close()
	return port
}
