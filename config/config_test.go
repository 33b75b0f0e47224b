package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// doc joins lines with newlines, so that line n of the document is
// argument n (counting from 1) in the test tables below.
func doc(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// at is an expected error: its line and its key path.
type at struct {
	line  int
	field string
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []at   // every error, in order
		msg  string // a substring of the first error's message
	}{
		{"syntax error", doc(
			`[server]`,
			`realm = "unterminated`,
		), []at{{2, ""}}, "invalid TOML"},
		{"duplicate table", doc(
			`[relay]`,
			`min_port = 50000`,
			`[relay]`,
		), []at{{3, ""}}, "invalid TOML"},
		{"unknown top-level key", doc(
			`# comment`,
			`colour = "red"`,
		), []at{{2, "colour"}}, `unknown key "colour" (want one of server, listen, relay`},
		{"unknown nested key", doc(
			`[relay]`,
			`min_port = 50000`,
			`min_prot = 50001`,
		), []at{{3, "relay.min_prot"}}, `unknown key "min_prot"`},
		{"unknown key in rules", doc(
			`[[rules]]`,
			`id = "a"`,
			`probabilty = 0.5`,
			`action.type = "drop"`,
		), []at{{3, "rules[0].probabilty"}}, `unknown key "probabilty"`},
		{"unknown key in rules.match", doc(
			`[[rules]]`,
			`action = { type = "drop" }`,
			`[[rules]]`,
			`[rules.match]`,
			`method = ["binding"]`,
			`[rules.action]`,
			`type = "drop"`,
		), []at{{5, "rules[1].match.method"}}, `unknown key "method" (want one of methods, classes`},
		{"unknown key in inline table", doc(
			`[[rules]]`,
			`action = { type = "drop", cod = 1 }`,
		), []at{{2, "rules[0].action.cod"}}, `unknown key "cod"`},
		{"wrong type", doc(
			`[relay]`,
			`min_port = "x"`,
		), []at{{2, "relay.min_port"}}, `expected an integer, got string "x"`},
		{"negative seed", doc(
			`[server]`,
			`seed = -1`,
		), []at{{2, "server.seed"}}, "-1 is out of range (want a non-negative integer)"},
		{"seed not an integer", doc(
			`[server]`,
			`seed = 1.5`,
		), []at{{2, "server.seed"}}, "expected a non-negative integer, got float 1.5"},
		{"wrong type array", doc(
			`[relay]`,
			`allow_peers = "127.0.0.0/8"`,
		), []at{{2, "relay.allow_peers"}}, "expected an array"},
		{"wrong type table", doc(
			`server = 5`,
		), []at{{1, "server"}}, "expected a table, got integer 5"},
		{"wrong type boolean", doc(
			`[[rules]]`,
			`enabled = "yes"`,
			`action.type = "drop"`,
		), []at{{2, "rules[0].enabled"}}, "expected a boolean"},
		{"bad cidr in allow_peers", doc(
			`[relay]`,
			`allow_peers = [`,
			`  "127.0.0.0/8",`,
			`  "10.0.0.0/33",`,
			`]`,
		), []at{{4, "relay.allow_peers[1]"}}, `invalid CIDR "10.0.0.0/33"`},
		{"bad duration", doc(
			`[relay]`,
			`channel_lifetime = "10 minutes"`,
		), []at{{2, "relay.channel_lifetime"}}, `invalid duration "10 minutes"`},
		{"negative duration", doc(
			`[webhooks.servicenow]`,
			`latency = "-1s"`,
		), []at{{2, "webhooks.servicenow.latency"}}, "must not be negative"},
		{"duration as number", doc(
			`[relay]`,
			`permission_lifetime = 300`,
		), []at{{2, "relay.permission_lifetime"}}, `expected a duration string such as "150ms", got integer 300`},
		{"zero lifetime", doc(
			`[relay]`,
			`allocation_lifetime = "0s"`,
		), []at{{2, "relay.allocation_lifetime"}}, "must be between 1s and 24h0m0s, got 0s"},
		{"lifetimes out of range", doc(
			`[relay]`,
			`allocation_lifetime = "25h"`,
			`permission_lifetime = "500ms"`,
			`channel_lifetime = "-1s"`,
		), []at{{2, "relay.allocation_lifetime"}, {3, "relay.permission_lifetime"}, {4, "relay.channel_lifetime"}}, "must be between 1s and 24h0m0s, got 25h0m0s"},
		{"journal too large", doc(
			`[server]`,
			`journal_size = 1000001`,
		), []at{{2, "server.journal_size"}}, "must be between 1 and 1000000, got 1000001"},
		{"port range min over max", doc(
			`[relay]`,
			`min_port = 60000`,
			`max_port = 50000`,
		), []at{{2, "relay.min_port"}}, "must not exceed relay.max_port (50000), got 60000"},
		{"max under default min", doc(
			`[relay]`,
			`max_port = 40000`,
		), []at{{2, "relay.min_port"}}, "must not exceed"},
		{"port out of range", doc(
			`[relay]`,
			`min_port = 0`,
		), []at{{2, "relay.min_port"}}, "must be between 1 and 65535, got 0"},
		{"bad relay address", doc(
			`relay.address = "localhost"`,
		), []at{{1, "relay.address"}}, `invalid IP address "localhost"`},
		{"bad listener transport", doc(
			`[[listen]]`,
			`transport = "sctp"`,
			`address = "127.0.0.1:0"`,
		), []at{{2, "listen[0].transport"}}, `unknown transport "sctp"`},
		{"bad listen address", doc(
			`[[listen]]`,
			`transport = "udp"`,
			`address = "127.0.0.1:0"`,
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "example.com:3478"`,
		), []at{{6, "listen[1].address"}}, `invalid address "example.com:3478"`},
		{"listen port out of range", doc(
			`listen = [{ transport = "udp", address = "127.0.0.1:70000" }]`,
		), []at{{1, "listen[0].address"}}, "invalid address"},
		{"duplicate listener", doc(
			`[[listen]]`,
			`transport = "udp"`,
			`address = "127.0.0.1:3478"`,
			`[[listen]]`,
			`transport = "udp"`,
			`address = "127.0.0.1:3478"`,
		), []at{{6, "listen[1].address"}}, "duplicate listener: listen[0]"},
		{"0.0.0.0 beside 127.0.0.1", doc(
			`users = [{ name = "alice", password = "x" }]`,
			`[[listen]]`,
			`transport = "udp"`,
			`address = "127.0.0.1:3478"`,
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "0.0.0.0:3478"`, // another transport: fine
			`[[listen]]`,
			`transport = "udp"`,
			`address = "0.0.0.0:3478"`,
		), []at{{10, "listen[2].address"}}, "0.0.0.0:3478 overlaps listen[0] (udp 127.0.0.1:3478): 0.0.0.0:3478 takes udp port 3478 on every address, so serve could not bind both"},
		{":: beside 127.0.0.1", doc(
			`users = [{ name = "alice", password = "x" }]`,
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "[::]:3478"`,
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.2:3478"`,
		), []at{{7, "listen[1].address"}}, "127.0.0.2:3478 overlaps listen[0] (tcp [::]:3478): [::]:3478 takes tcp port 3478 on every address"},
		{"localhost beside 127.0.0.1", doc(
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.1:3478"`,
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.2:3478"`, // another address: fine
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "localhost:3478"`,
		), []at{{9, "listen[2].address"}}, "localhost:3478 is 127.0.0.1:3478, which listen[0] (tcp 127.0.0.1:3478) binds too"},
		{"tls beside tcp", doc(
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.1:5349"`,
			`[[listen]]`,
			`transport = "tls"`,
			`address = "127.0.0.1:5349"`,
		), []at{{6, "listen[1].address"}}, "duplicate listener: listen[0] is tcp 127.0.0.1:5349 too"},
		{"http on a tcp listener", doc(
			`[[listen]]`,
			`transport = "udp"`,
			`address = "127.0.0.1:8478"`, // UDP: fine
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.1:8478"`,
			`[http]`,
			`address = "127.0.0.1:8478"`,
		), []at{{8, "http.address"}}, "127.0.0.1:8478 is listen[1]'s address too (tcp 127.0.0.1:8478), so serve could not bind both"},
		{"http on localhost beside a tcp listener", doc(
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.1:3478"`,
			`[http]`,
			`address = "localhost:3478"`,
		), []at{{5, "http.address"}}, "localhost:3478 is listen[0]'s address too (tcp 127.0.0.1:3478), so serve could not bind both"},
		{"http on 0.0.0.0 beside a tcp listener", doc(
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.1:3478"`,
			`[http]`,
			`address = "0.0.0.0:3478"`,
			`token = "t"`,
		), []at{{5, "http.address"}}, "0.0.0.0:3478 overlaps listen[0] (tcp 127.0.0.1:3478): 0.0.0.0:3478 takes tcp port 3478 on every address"},
		{"no listener", doc(
			`listen = []`,
		), []at{{1, "listen"}}, "at least one listener"},
		{"listener without address", doc(
			`[[listen]]`,
			`transport = "udp"`,
		), []at{{1, "listen[0].address"}}, `invalid address ""`},
		{"empty realm and journal", doc(
			`[server]`,
			`realm = ""`,
			`journal_size = 0`,
		), []at{{2, "server.realm"}, {3, "server.journal_size"}}, "must not be empty"},
		{"trace and capture out of range", doc(
			`[server]`,
			`trace_size = -1`,
			`capture_bytes = 2000000000`,
		), []at{{2, "server.trace_size"}, {3, "server.capture_bytes"}}, "must be from 0 (off) to 1000000, got -1"},
		{"read loops out of range", doc(
			`[server]`,
			`read_loops = 65`,
		), []at{{2, "server.read_loops"}}, "must be from 0 (one per CPU) to 64, got 65"},
		{"negative read loops", doc(
			`[server]`,
			`read_loops = -1`,
		), []at{{2, "server.read_loops"}}, "must be from 0 (one per CPU) to 64, got -1"},
		{"duplicate user", doc(
			`[[users]]`,
			`name = "alice"`,
			`password = "a"`,
			`[[users]]`,
			`name = "alice"`,
			`password = "b"`,
		), []at{{5, "users[1].name"}}, `duplicate user "alice" (also users[0])`},
		{"user name with colon", doc(
			`users = [`,
			`  { name = "a:b", password = "x" },`,
			`  { name = "c" },`,
			`]`,
		), []at{{2, "users[0].name"}, {3, "users[1].password"}}, "must not contain ':'"},
		{"non-loopback http without token", doc(
			`[http]`,
			`address = "0.0.0.0:8478"`,
		), []at{{2, "http.token"}}, "required when http.address is not loopback"},
		{"built-in user on a LAN listener", doc(
			`[[listen]]`,
			`transport = "udp"`,
			`address = "0.0.0.0:3478"`,
		), []at{{3, "users[0]"}}, "the built-in credential user/pass is refused when listen[0].address (0.0.0.0:3478) is not loopback: name your own [[users]], or set [auth].secret and users = []"},
		{"built-in user named on a LAN listener", doc(
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "127.0.0.1:3478"`,
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "[2001:db8::1]:3478"`,
			`[auth]`,
			`secret = "s"`,
			`[[users]]`,
			`name = "user"`,
			`password = "pass"`,
		), []at{{9, "users[0]"}}, "refused when listen[1].address ([2001:db8::1]:3478) is not loopback"},
		{"bad http address", doc(
			`[http]`,
			`address = "8478"`,
		), []at{{2, "http.address"}}, `invalid address "8478"`},
		{"bad allowed origin", doc(
			`[http]`,
			`allowed_origins = ["https://ok.example", "ftp://x", "https://a.example/path"]`,
		), []at{{2, "http.allowed_origins[1]"}, {2, "http.allowed_origins[2]"}}, `invalid origin "ftp://x"`},
		{"webhook mode", doc(
			`[webhooks.crm]`,
			`mode = "sometimes"`,
		), []at{{2, "webhooks.crm.mode"}}, `unknown mode "sometimes" (want sync or async)`},
		{"webhook numbers", doc(
			`[webhooks.crm]`,
			`status = 700`,
			`error_status = 42`,
			`error_probability = 1.5`,
			`rate_limit = -1`,
			`max_body_bytes = 0`,
		), []at{{2, "webhooks.crm.status"}, {3, "webhooks.crm.error_status"}, {4, "webhooks.crm.error_probability"}, {5, "webhooks.crm.rate_limit"}, {6, "webhooks.crm.max_body_bytes"}}, "must be between 200 and 599, got 700"},
		{"webhook numbers too large", doc(
			`[webhooks.crm]`,
			`latency = "2h"`,
			`jitter = "1281024h"`,
			`status = 150`,
			`error_status = 600`,
			`rate_limit = 1e9`,
			`max_body_bytes = 2147483648`,
		), []at{{2, "webhooks.crm.latency"}, {3, "webhooks.crm.jitter"}, {4, "webhooks.crm.status"}, {5, "webhooks.crm.error_status"}, {6, "webhooks.crm.rate_limit"}, {7, "webhooks.crm.max_body_bytes"}}, "must be between 0s and 1h0m0s, got 2h0m0s"},
		{"webhook jitter", doc(
			`[webhooks.crm]`,
			`jitter = "1281024h"`,
		), []at{{2, "webhooks.crm.jitter"}}, "must be between 0s and 1h0m0s, got 1281024h0m0s"},
		{"webhook rate limit", doc(
			`[webhooks.crm]`,
			`rate_limit = nan`,
			`max_body_bytes = 1073741825`,
		), []at{{2, "webhooks.crm.rate_limit"}, {3, "webhooks.crm.max_body_bytes"}}, "must be between 0 (no limit) and 1000000 requests per second, got NaN"},
		{"webhook name", doc(
			`[webhooks."a b"]`,
		), []at{{1, "webhooks.a b"}}, `invalid webhook name "a b"`},
		{"duplicate rule id", doc(
			`[[rules]]`,
			`id = "x"`,
			`action.type = "drop"`,
			``,
			`[[rules]]`,
			`id = "y"`,
			`action.type = "drop"`,
			``,
			`[[rules]]`,
			`id = "x"`,
			`action.type = "drop"`,
		), []at{{10, "rules[2].id"}}, `duplicate id "x" (also rules[0])`},
		{"unknown rule method", doc(
			`[[rules]]`,
			`action.type = "drop"`,
			`[[rules]]`,
			`action.type = "drop"`,
			`[[rules]]`,
			`action.type = "drop"`,
			`[rules.match]`,
			`methods = [`,
			`  "binding", # the first`,
			`  "bindng",`,
			`]`,
		), []at{{10, "rules[2].match.methods[1]"}}, `unknown method "bindng" (want one of binding, allocate`},
		{"bad regexp", doc(
			`[[rules]]`,
			`match = { username = "alice(" }`,
			`action = { type = "drop" }`,
		), []at{{2, "rules[0].match.username"}}, `invalid regular expression "alice("`},
		{"probability 2", doc(
			`[[rules]]`,
			`probability = 2`,
			`action.type = "drop"`,
		), []at{{2, "rules[0].probability"}}, "between 0 and 1, got 2"},
		{"error code 200", doc(
			`[[rules]]`,
			`[rules.action]`,
			`type = "error"`,
			`code = 200`,
		), []at{{4, "rules[0].action.code"}}, "between 300 and 699, got 200"},
		{"unknown action type", doc(
			`[[rules]]`,
			`action.type = "explode"`,
		), []at{{2, "rules[0].action.type"}}, `unknown action type "explode"`},
		{"missing action", doc(
			`[[rules]]`,
			`id = "a"`,
		), []at{{1, "rules[0].action.type"}}, "required"},
		{"close on udp", doc(
			`[[rules]]`,
			`action.type = "close"`,
		), []at{{1, "rules[0].match.transports"}}, "only to TCP"},
		{"attribute type", doc(
			`[[rules]]`,
			`action.type = "drop"`,
			`[[rules]]`,
			`action.type = "drop"`,
			`[[rules.match.attributes]]`,
			`type = "USERNAME"`,
			`[[rules.match.attributes]]`,
			`type = "USERNAM"`,
		), []at{{8, "rules[1].match.attributes[1].type"}}, `unknown attribute type "USERNAM"`},
		{"ratelimit then", doc(
			`[[rules]]`,
			`[rules.action]`,
			`type = "ratelimit"`,
			`rate = 10`,
			`burst = 1`,
			`[rules.action.then]`,
			`type = "error"`,
			`code = 99`,
		), []at{{8, "rules[0].action.then.code"}}, "between 300 and 699"},
		{"unknown webhook in rule", doc(
			`[[rules]]`,
			`action.type = "drop"`,
			`match.webhook.name = "crm"`,
		), []at{{3, "rules[0].match.webhook.name"}}, `unknown webhook "crm" (have servicenow)`},
		{"bad scenario rule", doc(
			`[scenarios.lab]`,
			`description = "lab"`,
			`[[scenarios.lab.rules]]`,
			`action.type = "drop"`,
			`[[scenarios.lab.rules]]`,
			`action = { type = "error", code = "x" }`,
		), []at{{6, "scenarios.lab.rules[1].action.code"}}, `expected an integer, got string "x"`},
		{"scenario rule missing delay", doc(
			`[scenarios.slow]`,
			`rules = [{ action = { type = "delay" } }]`,
		), []at{{2, "scenarios.slow.rules[0].action.delay"}}, "greater than 0"},
		{"duplicate id in scenario", doc(
			`[[scenarios.a.rules]]`,
			`id = "x"`,
			`action.type = "drop"`,
			`[[scenarios.a.rules]]`,
			`id = "x"`,
			`action.type = "drop"`,
			`[[scenarios.b.rules]]`,
			`id = "x"`,
			`action.type = "drop"`,
		), []at{{5, "scenarios.a.rules[1].id"}}, "duplicate id"},
		{"bad scenario name", doc(
			`[scenarios."a/b"]`,
			`rules = []`,
		), []at{{1, "scenarios.a/b"}}, `invalid scenario name "a/b"`},
		{"unknown clock", doc(
			`[server]`,
			`clock = "manul"`,
		), []at{{2, "server.clock"}}, `unknown clock "manul" (want "system" or "manual")`},
		{"step out of order", doc(
			`[[scenarios.outage.steps]]`,
			`at = "0s"`,
			`[[scenarios.outage.steps]]`,
			`at = "15s"`,
			`[[scenarios.outage.steps]]`,
			`at = "5s"`,
		), []at{{6, "scenarios.outage.steps[2].at"}}, "step out of order: 5s is not after steps[1].at (15s)"},
		{"negative step offset", doc(
			`[[scenarios.outage.steps]]`,
			`at = "0s"`,
			`[[scenarios.outage.steps]]`,
			`at = "-5s"`,
		), []at{{4, "scenarios.outage.steps[1].at"}}, `invalid duration "-5s": must not be negative`},
		{"empty steps", doc(
			`[scenarios.outage]`,
			`steps = []`,
		), []at{{2, "scenarios.outage.steps"}}, "must not be empty"},
		{"first step not at 0s", doc(
			`[[scenarios.outage.steps]]`,
			`at = "5s"`,
		), []at{{2, "scenarios.outage.steps[0].at"}}, `want "0s"`},
		{"repeat before the last step", doc(
			`[scenarios.outage]`,
			`repeat = "10s"`,
			`[[scenarios.outage.steps]]`,
			`at = "0s"`,
			`[[scenarios.outage.steps]]`,
			`at = "15s"`,
		), []at{{2, "scenarios.outage.repeat"}}, "is not after the last step's at (15s)"},
		{"bad rule in a step", doc(
			`[[scenarios.outage.steps]]`,
			`at = "0s"`,
			`[[scenarios.outage.steps.rules]]`,
			`action = { type = "error", code = 999 }`,
		), []at{{4, "scenarios.outage.steps[0].rules[0].action.code"}}, ""},
		{"rules and steps", doc(
			`[[scenarios.outage.rules]]`,
			`action.type = "drop"`,
			`[[scenarios.outage.steps]]`,
			`at = "0s"`,
		), []at{{1, "scenarios.outage.rules"}}, "rules or steps, not both"},
		{"quoted keys and multi-line strings", doc(
			`[[rules]]`,
			`"description" = """`,
			`[[not.a.table]]`,
			`"""`,
			`action.'type' = "drop"`,
			`"match".methods = ["bindng"]`,
		), []at{{6, "rules[0].match.methods[0]"}}, "unknown method"},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in, "stunfault.toml")
			if err == nil {
				t.Fatalf("Parse() = nil error, want %v", tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse() error is %T, want Errors", err)
			}
			var got []at
			for _, e := range errs {
				got = append(got, at{e.Line, e.Field})
				if e.File != "stunfault.toml" {
					t.Errorf("File = %q, want stunfault.toml", e.File)
				}
				prefix := fmt.Sprintf("stunfault.toml:%d: ", e.Line)
				if e.Field != "" {
					prefix += e.Field + ": "
				}
				if !strings.HasPrefix(e.Error(), prefix) {
					t.Errorf("Error() = %q, want prefix %q", e.Error(), prefix)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("errors at %v, want %v; error:\n%v", got, tt.want, err)
			}
			if !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", errs[0].Msg, tt.msg)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	in := doc(
		`colour = "red"`, // 1
		`[server]`,
		`journal_size = -1`, // 3
		`[relay]`,
		`min_port = "low"`, // 5
		`allow_peers = ["nope"]`,
		`[[rules]]`,
		`id = "a"`,
		`match.methods = ["bindng", "allocate"]`, // 9
		`action = { type = "drop", code = 403 }`, // 10
		`[[rules]]`,
		`id = "a"`, // 12
		`action.type = "delay"`,
	)
	_, err := Parse(in, "")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse() = %v, want Errors", err)
	}
	want := []string{
		`<input>:1: colour: unknown key "colour"`,
		`<input>:3: server.journal_size: must be between 1 and 1000000, got -1`,
		`<input>:5: relay.min_port: expected an integer, got string "low"`,
		`<input>:6: relay.allow_peers[0]: invalid CIDR "nope"`,
		`<input>:9: rules[0].match.methods[0]: unknown method "bindng"`,
		`<input>:10: rules[0].action.code: not a parameter of drop`,
		`<input>:12: rules[1].id: duplicate id "a" (also rules[0])`,
		`<input>:13: rules[1].action.delay: must be greater than 0`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(*Error) = %v, want the first error", first)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	want := []Listener{{Transport: "udp", Address: "127.0.0.1:3478"}, {Transport: "tcp", Address: "127.0.0.1:3478"}}
	if !slices.Equal(c.Listen, want) {
		t.Errorf("Listen = %v, want %v", c.Listen, want)
	}
	if c.HTTP.Address != "127.0.0.1:8478" {
		t.Errorf("HTTP.Address = %q, want 127.0.0.1:8478", c.HTTP.Address)
	}
	if c.Server.Realm != "stunfault.test" || c.Server.Software != "stunfault" || c.Server.JournalSize != 10000 || c.Server.Seed != 0 {
		t.Errorf("Server = %+v", c.Server)
	}
	r := c.Relay
	if r.Address != "127.0.0.1" || r.MinPort != 49152 || r.MaxPort != 65535 ||
		!slices.Equal(r.AllowPeers, []string{"127.0.0.0/8", "::1/128"}) ||
		r.AllocationLifetime.D() != 10*time.Minute || r.PermissionLifetime.D() != 5*time.Minute || r.ChannelLifetime.D() != 10*time.Minute {
		t.Errorf("Relay = %+v", r)
	}
	if !slices.Equal(c.Users, []User{{"user", "pass"}}) {
		t.Errorf("Users = %v", c.Users)
	}
	w, ok := c.Webhooks["servicenow"]
	if !ok || len(c.Webhooks) != 1 {
		t.Fatalf("Webhooks = %v, want servicenow only", c.Webhooks)
	}
	if w.Latency.D() != 150*time.Millisecond || w.Jitter != 0 || w.Mode != "sync" || w.Status != 201 ||
		w.ContentType != "application/json" || w.MaxBodyBytes != 1048576 || w.RateLimit != 0 ||
		w.ErrorStatus != 0 || w.ErrorProbability != 1 || !strings.Contains(w.Body, `"number":"INC`) {
		t.Errorf("servicenow = %+v", w)
	}
	if len(c.Rules) != 0 || len(c.Scenarios) != 0 || c.Auth.Secret != "" || c.HTTP.Token != "" || len(c.HTTP.AllowedOrigins) != 0 {
		t.Errorf("Default() has rules, scenarios or secrets: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}

	// Each call is a copy.
	c.Listen[0].Address = "changed"
	c.Relay.AllowPeers[0] = "changed"
	c.Users[0].Name = "changed"
	c.Webhooks["other"] = Webhook{}
	d := Default()
	if d.Listen[0].Address == "changed" || d.Relay.AllowPeers[0] == "changed" || d.Users[0].Name == "changed" || len(d.Webhooks) != 1 {
		t.Errorf("changing one Default() changed the next: %+v", d)
	}
}

func TestDefaultParsesAsFile(t *testing.T) {
	c, err := Parse(defaultTOML, "default.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", c), fmt.Sprintf("%+v", Default()); got != want {
		t.Errorf("Parse(default.toml) = %s\nwant Default() = %s", got, want)
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, c Config)
	}{
		{"empty file is the default", nil, func(t *testing.T, c Config) {
			if fmt.Sprint(c) != fmt.Sprint(Default()) {
				t.Errorf("got %+v, want Default()", c)
			}
		}},
		{"plain table merges key by key", doc(
			`[relay]`,
			`min_port = 50000`,
			`[server]`,
			`seed = 7`,
		), func(t *testing.T, c Config) {
			if c.Relay.MinPort != 50000 || c.Relay.MaxPort != 65535 || c.Relay.Address != "127.0.0.1" || len(c.Relay.AllowPeers) != 2 {
				t.Errorf("Relay = %+v, want min_port 50000 and the other defaults", c.Relay)
			}
			if c.Server.Seed != 7 || c.Server.Realm != "stunfault.test" {
				t.Errorf("Server = %+v", c.Server)
			}
		}},
		{"array inside a plain table is replaced", doc(
			`[relay]`,
			`allow_peers = ["10.0.0.0/8"]`,
		), func(t *testing.T, c Config) {
			if !slices.Equal(c.Relay.AllowPeers, []string{"10.0.0.0/8"}) {
				t.Errorf("AllowPeers = %v", c.Relay.AllowPeers)
			}
		}},
		{"one listener replaces both", doc(
			`[[listen]]`,
			`transport = "tcp"`,
			`address = "[::1]:0"`,
		), func(t *testing.T, c Config) {
			if !slices.Equal(c.Listen, []Listener{{Transport: "tcp", Address: "[::1]:0"}}) {
				t.Errorf("Listen = %v", c.Listen)
			}
		}},
		{"users replaced", doc(
			`users = [{ name = "alice", password = "a" }, { name = "bob", password = "b" }]`,
		), func(t *testing.T, c Config) {
			if !slices.Equal(c.Users, []User{{"alice", "a"}, {"bob", "b"}}) {
				t.Errorf("Users = %v", c.Users)
			}
		}},
		{"webhooks replaced, each from the servicenow defaults", doc(
			`[webhooks.crm]`,
			`mode = "async"`,
			`latency = "2s"`,
		), func(t *testing.T, c Config) {
			w, ok := c.Webhooks["crm"]
			if !ok || len(c.Webhooks) != 1 {
				t.Fatalf("Webhooks = %v, want crm only", c.Webhooks)
			}
			sn := Default().Webhooks["servicenow"]
			want := sn
			want.Mode, want.Latency = "async", faults.Duration(2*time.Second)
			if w != want {
				t.Errorf("crm = %+v, want %+v", w, want)
			}
		}},
		{"servicenow given keeps its other defaults", doc(
			`webhooks.servicenow.status = 200`,
		), func(t *testing.T, c Config) {
			want := Default().Webhooks["servicenow"]
			want.Status = 200
			if c.Webhooks["servicenow"] != want {
				t.Errorf("servicenow = %+v, want %+v", c.Webhooks["servicenow"], want)
			}
		}},
		{"rules and scenarios", doc(
			`[[rules]]`,
			`id = "r"`,
			`labels = { test = "t" }`,
			`enabled = false`,
			`probability = 0.5`,
			`[rules.match]`,
			`methods = ["binding"]`,
			`authenticated = true`,
			`[rules.action]`,
			`type = "ratelimit"`,
			`rate = 2`,
			`burst = 1`,
			`then = { type = "error", code = 403 }`,
			`[scenarios.lab]`,
			`description = "d"`,
			`[[scenarios.lab.rules]]`,
			`action = { type = "delay", delay = "1s" }`,
		), func(t *testing.T, c Config) {
			if len(c.Rules) != 1 {
				t.Fatalf("Rules = %v", c.Rules)
			}
			r := c.Rules[0]
			if r.ID != "r" || r.Labels["test"] != "t" || r.IsEnabled() || r.Probability == nil || *r.Probability != 0.5 ||
				!slices.Equal(r.Match.Methods, []string{"binding"}) || r.Match.Authenticated == nil || !*r.Match.Authenticated ||
				r.Action.Type != "ratelimit" || r.Action.Then == nil || r.Action.Then.Code != 403 {
				t.Errorf("rule = %+v", r)
			}
			s := c.Scenarios["lab"]
			if s.Description != "d" || len(s.Rules) != 1 || s.Rules[0].Action.Delay.D() != time.Second {
				t.Errorf("scenario = %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.in, "")
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestClone(t *testing.T) {
	c := Default()
	c.Rules = []faults.Rule{{
		Labels:      map[string]string{"a": "b"},
		Probability: new(0.5),
		Match: faults.Match{
			Methods:    []string{"binding"},
			Attributes: []faults.AttributeMatch{{Type: "USERNAME", Present: new(true)}},
			Webhook:    &faults.WebhookMatch{Name: "servicenow"},
		},
		Action: faults.Action{Type: "ratelimit", Then: &faults.Action{Type: "drop"}},
	}}
	c.Scenarios = map[string]Scenario{"s": {Rules: []faults.Rule{{Match: faults.Match{Sources: []string{"::1"}}}}}}
	d := c.Clone()
	d.Rules[0].Labels["a"] = "x"
	*d.Rules[0].Probability = 1
	d.Rules[0].Match.Methods[0] = "x"
	*d.Rules[0].Match.Attributes[0].Present = false
	d.Rules[0].Match.Webhook.Name = "x"
	d.Rules[0].Action.Then.Type = "x"
	d.Scenarios["s"].Rules[0].Match.Sources[0] = "x"
	r := c.Rules[0]
	if r.Labels["a"] != "b" || *r.Probability != 0.5 || r.Match.Methods[0] != "binding" || !*r.Match.Attributes[0].Present ||
		r.Match.Webhook.Name != "servicenow" || r.Action.Then.Type != "drop" || c.Scenarios["s"].Rules[0].Match.Sources[0] != "::1" {
		t.Errorf("changing the clone changed the original: %+v", c)
	}
}

func TestValidateGoConfig(t *testing.T) {
	c := Default()
	c.Relay.MinPort = 0
	c.Rules = append(c.Rules, faults.Rule{Match: faults.Match{Methods: []string{"bindng"}}, Action: faults.Action{Type: "drop"}})
	err := c.Validate()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Validate() = %v, want Errors", err)
	}
	want := "config: relay.min_port: must be between 1 and 65535, got 0\n" +
		`config: rules[0].match.methods[0]: unknown method "bindng" (want one of binding, allocate, refresh, createpermission, channelbind, send, data, channeldata)`
	if err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%v", err, want)
	}
	for _, e := range errs {
		if e.File != "" || e.Line != 0 {
			t.Errorf("error %v has a file or line", e)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{"stunfault.toml", 12, "relay.min_port", "must be between 1 and 65535, got 0"}, "stunfault.toml:12: relay.min_port: must be between 1 and 65535, got 0"},
		{Error{"stunfault.toml", 0, "relay.min_port", "m"}, "stunfault.toml: relay.min_port: m"},
		{Error{"", 3, "x", "m"}, "line 3: x: m"},
		{Error{"", 0, "x", "m"}, "config: x: m"},
		{Error{"a.toml", 2, "", "invalid TOML: m"}, "a.toml:2: invalid TOML: m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "good", "minimal.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen[0].Address != "127.0.0.1:0" {
		t.Errorf("Listen = %v", c.Listen)
	}

	path := filepath.Join("testdata", "bad", "syntax.toml")
	_, err = Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":") {
		t.Errorf("Load(%s) = %v, want an error starting with the path", path, err)
	}

	_, err = Load(filepath.Join("testdata", "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load(missing) = %v, want a wrapped os.ErrNotExist", err)
	}
}

// TestLoadEveryTOML loads every .toml file in the module (outside
// testdata/bad*) and every ```toml block in README.md, so that examples and
// docs cannot drift from the code.
func TestLoadEveryTOML(t *testing.T) {
	root := moduleRoot(t)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "bad") && filepath.Base(filepath.Dir(path)) == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(path) != ".toml" {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			if _, err := Load(path); err != nil {
				t.Error(err)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	blocks := tomlBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```toml blocks")
	}
	for _, b := range blocks {
		name := fmt.Sprintf("README.md:%d", b.line)
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(b.text), name); err != nil {
				t.Error(err)
			}
		})
	}
}

type block struct {
	line int // of the first line inside the fence
	text string
}

var fence = regexp.MustCompile("(?m)^```toml[ \t]*\n((?s:.*?))^```[ \t]*$")

// tomlBlocks returns the ```toml fenced blocks of a Markdown text.
func tomlBlocks(md string) []block {
	var out []block
	for _, m := range fence.FindAllStringSubmatchIndex(md, -1) {
		out = append(out, block{line: strings.Count(md[:m[2]], "\n") + 1, text: md[m[2]:m[3]]})
	}
	return out
}

// moduleRoot returns the directory holding go.mod, going up from the
// package directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

func TestKeyLines(t *testing.T) {
	src := doc(
		`top = 1 # line 1`,
		`[server]`,
		`realm = "a[b]"`,
		`'quoted key' = 'x'`,
		`[[rules]]`,
		`x = """`,
		`[[rules]]`,
		`"""`,
		`[[rules]]`,
		`match = { methods = ["a",`,
		`  "b"], webhook = { name = "w" } }`,
		`[rules.action]`,
		`then.type = "drop"`,
		`[[rules.match.attributes]]`,
		`type = "A"`,
		`[[rules.match.attributes]]`,
		`type = 'B'`,
		`[scenarios.lab]`,
		`[[scenarios.lab.rules]]`,
		`arr = [ [1, 2], [3,`,
		`4] ]`,
		`when = 1979-05-27 07:32:00Z`,
		`after = 3`,
	)
	lines := scanKeyLines(string(src))
	want := map[string]int{
		"top":                               1,
		"server":                            2,
		"server.realm":                      3,
		"server.quoted key":                 4,
		"rules":                             5,
		"rules[0]":                          5,
		"rules[0].x":                        6,
		"rules[1]":                          9,
		"rules[1].match":                    10,
		"rules[1].match.methods[0]":         10,
		"rules[1].match.methods[1]":         11,
		"rules[1].match.webhook.name":       11,
		"rules[1].action":                   12,
		"rules[1].action.then.type":         13,
		"rules[1].match.attributes[0]":      14,
		"rules[1].match.attributes[1]":      16,
		"rules[1].match.attributes[1].type": 17,
		"scenarios.lab":                     18,
		"scenarios.lab.rules[0]":            19,
		"scenarios.lab.rules[0].arr[1][1]":  21,
		"scenarios.lab.rules[0].when":       22,
		"scenarios.lab.rules[0].after":      23,
	}
	for path, line := range want {
		if got := lines[path]; got != line {
			t.Errorf("line of %s = %d, want %d", path, got, line)
		}
	}
	if _, ok := lines["rules[2]"]; ok {
		t.Errorf("the [[rules]] inside a multi-line string was counted")
	}
	if got := lines.line("rules[1].action.code"); got != 12 {
		t.Errorf("line(rules[1].action.code) = %d, want 12 (its table)", got)
	}
}

// FuzzParse checks that no input makes Parse panic or hang, that every
// failure is Errors, and that what Parse accepts Validate accepts.
func FuzzParse(f *testing.F) {
	f.Add(defaultTOML)
	for _, name := range []string{"good/full.toml", "good/minimal.toml", "bad/syntax.toml"} {
		data, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(doc(`a = { b = [1, { c = "]" }], 'd.e' = """x"""}`, `[[f.g]]`, `[f.g.h]`, `i = 1979-05-27 07:32:00`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse() error %T %v, want non-empty Errors", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}

func TestListenOnFreePorts(t *testing.T) {
	cfg := Default()
	cfg.Listen = append(cfg.Listen, Listener{Transport: "udp", Address: "[::1]:3479"})
	if err := cfg.ListenOnFreePorts(); err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:0", "127.0.0.1:0", "[::1]:0"}
	for i, l := range cfg.Listen {
		if l.Address != want[i] {
			t.Errorf("listen[%d] = %s, want %s", i, l.Address, want[i])
		}
	}
	if cfg.HTTP.Address != "127.0.0.1:0" {
		t.Errorf("http.address = %s, want 127.0.0.1:0", cfg.HTTP.Address)
	}
	cfg.HTTP.Address = "no-port"
	if err := cfg.ListenOnFreePorts(); err == nil {
		t.Error("an address without a port was accepted")
	}

	// A shallow copy's listeners are its own after the move.
	orig := Default()
	moved := orig
	if err := moved.ListenOnFreePorts(); err != nil {
		t.Fatal(err)
	}
	if orig.Listen[0].Address != "127.0.0.1:3478" {
		t.Errorf("the original's listen[0] = %s, want it left at 127.0.0.1:3478", orig.Listen[0].Address)
	}
}

// read_loops = 0, the default, is one read loop per CPU (at most 64); any
// other value is itself.
func TestUDPReadLoops(t *testing.T) {
	tests := []struct{ set, want int }{
		{0, min(runtime.NumCPU(), MaxReadLoops)},
		{1, 1},
		{3, 3},
		{MaxReadLoops, MaxReadLoops},
	}
	if d := Default().Server.ReadLoops; d != 0 {
		t.Errorf("default read_loops = %d, want 0 (one per CPU)", d)
	}
	for _, tt := range tests {
		if got := (Server{ReadLoops: tt.set}).UDPReadLoops(); got != tt.want {
			t.Errorf("read_loops = %d: UDPReadLoops() = %d, want %d", tt.set, got, tt.want)
		}
	}
}
