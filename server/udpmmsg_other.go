//go:build !linux

package server

import (
	"errors"
	"net"
	"net/netip"
)

// mmsgBatch stands in for recvmmsg and sendmmsg where there are none:
// newMmsgBatch fails, so packetConn reads one datagram per system call.
type mmsgBatch struct{}

func newMmsgBatch(*net.UDPConn) (*mmsgBatch, error) { return nil, errors.ErrUnsupported }

func (*mmsgBatch) setIn(int, []byte)                       {}
func (*mmsgBatch) recv([]byte, int) (int, error)           { return 0, errors.ErrUnsupported }
func (*mmsgBatch) received(int) (int, netip.AddrPort)      { return 0, netip.AddrPort{} }
func (*mmsgBatch) setOut(int, []byte, netip.AddrPort) bool { return false }
func (*mmsgBatch) forget(int)                              {}
func (*mmsgBatch) send(int, int) (int, error)              { return 0, errors.ErrUnsupported }
