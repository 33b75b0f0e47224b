package config

import (
	"fmt"
	"net"
	"slices"
)

// ListenOnFreePorts sets the port of every [[listen]] address and of
// [http].address to 0, keeping each host, so that a server started from c
// binds free ports (read them back from the server) and never collides with
// another stunfault, such as one on the default ports. Listeners that shared
// an address still share one port when both ask for 0 on the same host.
// servertest, the examples and `stunfault serve -free-ports` use it. It
// writes c.Listen as a new slice, never into one c shares with another
// Config, and leaves c unchanged when it returns an error.
func (c *Config) ListenOnFreePorts() error {
	listen := slices.Clone(c.Listen)
	for i, l := range listen {
		host, _, err := net.SplitHostPort(l.Address)
		if err != nil {
			return fmt.Errorf("config: listen[%d].address: %w", i, err)
		}
		listen[i].Address = net.JoinHostPort(host, "0")
	}
	host, _, err := net.SplitHostPort(c.HTTP.Address)
	if err != nil {
		return fmt.Errorf("config: http.address: %w", err)
	}
	c.Listen = listen
	c.HTTP.Address = net.JoinHostPort(host, "0")
	return nil
}
