package config

import (
	"time"

	"github.com/stunfault/stunfault/faults"
)

// Ranges of the connection limits ([server] tcp_*, [http] read_timeout and
// idle_timeout).
const (
	// MaxTCPConnections is the largest tcp_max_connections.
	MaxTCPConnections = 1_000_000
	// MaxConnTimeout is the largest connection timeout; the smallest is 1ms.
	MaxConnTimeout = faults.Duration(time.Hour)
)

// limits checks the connection limits.
func (v *validator) limits(c *Config) {
	if n := c.Server.TCPMaxConnections; n < 1 || n > MaxTCPConnections {
		v.add("server.tcp_max_connections", "must be between 1 and %d, got %d", MaxTCPConnections, n)
	}
	for _, t := range []struct {
		field string
		d     faults.Duration
	}{
		{"server.tcp_idle_timeout", c.Server.TCPIdleTimeout},
		{"server.tcp_frame_timeout", c.Server.TCPFrameTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
	} {
		if t.d < faults.Duration(time.Millisecond) || t.d > MaxConnTimeout {
			v.add(t.field, "must be between 1ms and %v, got %v", MaxConnTimeout, t.d)
		}
	}
}
