//go:build !linux

package server

import (
	"errors"
	"syscall"
)

// reusePortSupported: elsewhere a udp listener is one socket, one read
// loop (SO_REUSEPORT does not spread datagrams over sockets on every
// system, and not by the 4-tuple).
const reusePortSupported = false

type rawConn = syscall.RawConn

func reusePort(rawConn) error { return errors.New("SO_REUSEPORT: Linux only") }
