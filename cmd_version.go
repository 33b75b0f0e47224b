package main

import (
	"context"
	"fmt"

	"github.com/stunfault/stunfault/server"
)

var versionCmd = &command{
	name:     "version",
	synopsis: "[-json]",
	summary:  "print the versions of stunfault, Go and pion",
	doc: `Prints the versions of stunfault, Go and pion/turn and pion/stun, from the
build info: "go install github.com/stunfault/stunfault@VERSION" reports VERSION,
a build from a checkout reports its commit (or "devel").`,
	run: runVersion,
}

// runVersion is `stunfault version`.
func runVersion(_ context.Context, inv *invocation) error {
	fs := inv.flags()
	asJSON := fs.jsonFlag()
	if _, err := fs.parse(inv.args, 0, 0, "no arguments"); err != nil {
		return err
	}
	v := server.BuildVersion()
	if *asJSON {
		return writeJSON(inv.stdout, v)
	}
	fmt.Fprintf(inv.stdout, "stunfault %s (%s, pion/turn %s, pion/stun %s)\n", v.Version, v.Go, v.PionTURN, v.PionSTUN)
	return nil
}
