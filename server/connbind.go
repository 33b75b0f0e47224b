package server

import "net"

// isConnectionBindSuccess reports whether p, a message pion writes on a TCP
// connection, is a ConnectionBind success response (RFC 6062 §4.3): after
// it, that connection carries the peer's bytes, which are not STUN and must
// not be framed, decided on or faulted. The client waits for this response
// before it sends data, so nothing after it is framed by mistake.
func isConnectionBindSuccess(p []byte) bool {
	// Message type 0x010b: method ConnectionBind (0x00b), class success.
	return len(p) >= 20 && p[0] == 0x01 && p[1] == 0x0b &&
		p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xa4 && p[7] == 0x42
}

// isConnectionBindRequest reports whether p starts with a ConnectionBind
// request (RFC 6062 §4.4): once it is answered, the connection carries peer
// data, not STUN.
func isConnectionBindRequest(p []byte) bool {
	// Message type 0x000b: method ConnectionBind, class request.
	return len(p) >= 20 && p[0] == 0x00 && p[1] == 0x0b &&
		p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xa4 && p[7] == 0x42
}

// carryData makes c a TCP relay data connection, from the next byte on: c
// and the connections beneath it that follow STUN framing (the guard's, for
// its timeouts) pass the peer's bytes through untouched.
func (c *tcpConn) carryData() {
	c.bound.Store(true)
	for conn := c.Conn; conn != nil; {
		if d, ok := conn.(interface{ carryData() }); ok {
			d.carryData()
		}
		u, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		conn = u.NetConn()
	}
}
