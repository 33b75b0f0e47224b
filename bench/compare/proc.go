package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"
)

// proc is a server process of the comparison.
type proc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	udp, tcp string
	waitDone chan error
}

func (p *proc) addr(transport string) string {
	if transport == "tcp" {
		return p.tcp
	}
	return p.udp
}

// stop closes the server's standard input (bench/server exits cleanly on
// that), then kills it if it is still running after five seconds.
func (p *proc) stop() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	select {
	case <-p.waitDone:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waitDone
	}
}

// startProc starts cmd with a pipe on its standard input and returns once
// ready has read what it needs from its standard output, or after a minute.
func startProc(cmd *exec.Cmd, ready func(*bufio.Reader) error) (*proc, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	if cmd.Stderr == nil {
		cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, waitDone: make(chan error, 1)}
	readyErr := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		readyErr <- ready(br)
		_, _ = io.Copy(io.Discard, br)
		p.waitDone <- cmd.Wait()
	}()
	select {
	case err := <-readyErr:
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("%w (stderr: %s)", err, stderr.String())
		}
		return p, nil
	case <-time.After(time.Minute):
		p.stop()
		return nil, fmt.Errorf("not ready after a minute (stderr: %s)", stderr.String())
	}
}

// startBenchServer starts bench/server and reads its ready line.
func startBenchServer(bin string, args ...string) (*proc, error) {
	return startBenchServer2(exec.Command(bin, args...))
}

// startBenchServer2 starts cmd, a bench/server (perhaps under valgrind), and
// reads its ready line.
func startBenchServer2(cmd *exec.Cmd) (*proc, error) {
	var addrs struct{ UDP, TCP string }
	p, err := startProc(cmd, func(br *bufio.Reader) error {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("no ready line: %w", err)
		}
		return json.Unmarshal([]byte(line), &addrs)
	})
	if err != nil {
		return nil, err
	}
	p.udp, p.tcp = addrs.UDP, addrs.TCP
	return p, nil
}

// freePort returns a loopback port that was free a moment ago, for a server
// (coturn) that cannot report the port it bound.
func freePort() (int, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = pc.Close() }()
	ln, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if l.n > 0 {
		k := min(len(b), l.n)
		_, _ = l.w.Write(b[:k])
		l.n -= k
	}
	return len(b), nil
}

var errNoCoturn = errors.New("turnserver is not installed (apt-get install coturn)")
