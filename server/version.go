package server

import (
	"runtime"
	"runtime/debug"
)

// Version is stunfault's version, set at build time with
// -ldflags "-X github.com/stunfault/stunfault/server.Version=v1.2.3".
// Without it, the module version from the build info is used, or "devel".
var Version = ""

// VersionInfo is what /version answers and `stunfault -version` prints.
type VersionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	// Pion is the version of github.com/pion/turn/v5 built in.
	PionTURN string `json:"pion_turn"`
	PionSTUN string `json:"pion_stun"`
}

// BuildVersion reports the versions of stunfault and of the pion modules it
// was built with.
func BuildVersion() VersionInfo {
	v := VersionInfo{Version: Version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Path == "github.com/stunfault/stunfault" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/pion/turn/v5":
				v.PionTURN = d.Version
			case "github.com/pion/stun/v4":
				v.PionSTUN = d.Version
			}
		}
	}
	if v.Version == "" || v.Version == "(devel)" {
		v.Version = "devel"
	}
	return v
}
