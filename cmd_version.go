package main

import (
	"fmt"
	"io"

	"github.com/stunfault/stunfault/server"
)

// runVersion is `stunfault version`.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v := server.BuildVersion()
	fmt.Fprintf(stdout, "stunfault %s (%s, pion/turn %s, pion/stun %s)\n", v.Version, v.Go, v.PionTURN, v.PionSTUN)
	return nil
}
