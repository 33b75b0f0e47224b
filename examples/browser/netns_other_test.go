//go:build !linux

package main

import (
	"net/netip"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// netnsHost stands in for the Linux network namespace test host (see
// netns_linux_test.go): elsewhere the tests that need one skip.
type netnsHost struct {
	Name             string
	HostAddr, NSAddr netip.Addr
	Prefix           netip.Prefix
	External         string
}

// netnsServer stands in for a stunfault running in a netnsHost.
type netnsServer struct {
	UDPAddr, TCPAddr netip.AddrPort
}

// newNetnsHost skips the test: network namespaces are Linux's.
func newNetnsHost(t *testing.T) *netnsHost {
	t.Helper()
	t.Skip("needs a Linux network namespace of the test's own: skipping")
	return nil
}

func (*netnsHost) startServer(t *testing.T, _, _ int, _ ...faults.Rule) *netnsServer {
	t.Helper()
	t.Skip("needs a Linux network namespace of the test's own: skipping")
	return nil
}

func (*netnsServer) stop(*testing.T) map[string]int { return nil }

// runNetnsServerIfAsked does nothing: only the Linux tests start a
// namespace's stunfault.
func runNetnsServerIfAsked() {}
