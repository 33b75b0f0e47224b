package config

import (
	"fmt"
	"net"
)

// ListenOnFreePorts sets the port of every [[listen]] address and of
// [http].address to 0, keeping each host, so that a server started from c
// binds free ports (read them back from the server) and never collides with
// another stunfault, such as one on the default ports. Examples and tests
// use it.
func (c *Config) ListenOnFreePorts() error {
	for i, l := range c.Listen {
		host, _, err := net.SplitHostPort(l.Address)
		if err != nil {
			return fmt.Errorf("config: listen[%d].address: %w", i, err)
		}
		c.Listen[i].Address = net.JoinHostPort(host, "0")
	}
	host, _, err := net.SplitHostPort(c.HTTP.Address)
	if err != nil {
		return fmt.Errorf("config: http.address: %w", err)
	}
	c.HTTP.Address = net.JoinHostPort(host, "0")
	return nil
}
