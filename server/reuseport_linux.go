package server

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported: Linux spreads a SO_REUSEPORT group's datagrams over
// its sockets by a hash of the 4-tuple.
const reusePortSupported = true

type rawConn = syscall.RawConn

// reusePort sets SO_REUSEPORT on the socket c.
func reusePort(c rawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); cerr != nil {
		return cerr
	}
	return err
}
