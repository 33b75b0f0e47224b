package config_test

import (
	"fmt"

	"github.com/stunfault/stunfault/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
[[listen]]                  # replaces both default listeners
transport = "udp"
address = "127.0.0.1:0"

[relay]                     # merged key by key over the default
min_port = 50000

[[rules]]
id = "binding-403"
match = { methods = ["binding"] }
action = { type = "error", code = 403, reason = "Forbidden" }
`), "stunfault.toml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Listen[0].Transport, cfg.Listen[0].Address, cfg.Relay.MinPort, cfg.Relay.MaxPort, cfg.Rules[0].ID)

	_, err = config.Parse([]byte(`
[relay]
min_port = 0

[[rules]]
match.methods = ["bindng"]
action.type = "drop"
`), "stunfault.toml")
	fmt.Println(err)
	// Output:
	// udp 127.0.0.1:0 50000 65535 binding-403
	// stunfault.toml:3: relay.min_port: must be between 1 and 65535, got 0
	// stunfault.toml:6: rules[0].match.methods[0]: unknown method "bindng" (want one of binding, allocate, refresh, createpermission, channelbind, send, data, channeldata)
}

// Load reads a file over the built-in default: what `stunfault -config FILE`
// runs. Here a test fixture moves the listeners to free ports and keeps the
// default's users and webhooks.
func ExampleLoad() {
	cfg, err := config.Load("testdata/good/minimal.toml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Listen[0].Transport, cfg.Listen[0].Address, cfg.HTTP.Address)
	fmt.Println(cfg.Users[0].Name, cfg.Server.Realm, len(cfg.Rules))
	// Output:
	// udp 127.0.0.1:0 127.0.0.1:0
	// user stunfault.test 0
}
