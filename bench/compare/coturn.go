package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// startCoturn starts coturn's turnserver on a free loopback port with the
// realm, user and relay range the other servers use, and its default number
// of relay threads, and waits until it answers a Binding over UDP and TCP.
func startCoturn(dir string) (*proc, error) {
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		return nil, errNoCoturn
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"-n", "--no-cli", "--no-tls", "--no-dtls", "--no-rfc5780",
		"--listening-ip", "127.0.0.1", fmt.Sprintf("--listening-port=%d", port),
		"--relay-ip", "127.0.0.1", "--min-port", "49152", "--max-port", "65535",
		"--allow-loopback-peers", "--lt-cred-mech", "--user", "user:pass", "--realm", "stunfault.test",
		"--log-file", "stdout", "--simple-log", "--pidfile", filepath.Join(dir, "turnserver.pid"),
		"--no-software-attribute",
	)
	p, err := startProc(cmd, func(*bufio.Reader) error { return nil })
	if err != nil {
		return nil, err
	}
	p.udp = fmt.Sprintf("127.0.0.1:%d", port)
	p.tcp = p.udp
	for _, transport := range []string{"udp", "tcp"} {
		if err := waitAnswers(p.udp, transport); err != nil {
			p.stop()
			return nil, fmt.Errorf("coturn on %s: %w", p.udp, err)
		}
	}
	return p, nil
}

// waitAnswers returns once addr answers one Binding over transport, trying
// for at most ten seconds.
func waitAnswers(addr, transport string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{
			Target: addr, Transport: transport, Count: 1, Timeout: 200 * time.Millisecond,
		})
		if err == nil && res.Answered == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer over %s within 10s (last: %+v, %v)", transport, res, err)
		}
		// coturn announces nothing a program can wait on: retry a little later.
		time.Sleep(50 * time.Millisecond)
	}
}
