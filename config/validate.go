package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stunfault/stunfault/faults"
)

// Validate checks c as a whole: every value in range, names and addresses
// well formed, no duplicates, and every rule valid ([faults.Rule.Validate],
// its fields prefixed with "rules[i]." or "scenarios.NAME.rules[i].").
// [Parse] and [Load] run it already; it is for Configs built or changed in
// Go. The error, when not nil, is of type [Errors], with Field set and no
// file or line.
func (c Config) Validate() error {
	if errs, _ := c.validate(); len(errs) > 0 {
		return errs
	}
	return nil
}

type validator struct {
	errs Errors
	// near names, for an error about a key the file may leave out (a
	// missing http.token), the key whose line to report when that one is
	// absent (http.address).
	near map[*Error]string
}

func (v *validator) add(field, format string, args ...any) *Error {
	e := &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
	v.errs = append(v.errs, e)
	return e
}

// addNear is add, reporting the error at the line of near when the file
// does not define field.
func (v *validator) addNear(near, field, format string, args ...any) {
	e := v.add(field, format, args...)
	if v.near == nil {
		v.near = map[*Error]string{}
	}
	v.near[e] = near
}

// validate returns the problems in c, and for some of them the key near
// which to report them (see validator.near).
func (c *Config) validate() (Errors, map[*Error]string) {
	var v validator

	if c.Server.Realm == "" {
		v.add("server.realm", "must not be empty")
	}
	if k := c.Server.Clock; k != ClockSystem && k != ClockManual {
		v.add("server.clock", "unknown clock %q (want %q or %q)", k, ClockSystem, ClockManual)
	}
	if n := c.Server.JournalSize; n < 1 || n > MaxJournalSize {
		v.add("server.journal_size", "must be between 1 and %d, got %d", MaxJournalSize, n)
	}
	if c.Server.TraceSize < 0 || c.Server.TraceSize > maxTraceSize {
		v.add("server.trace_size", "must be from 0 (off) to %d, got %d", maxTraceSize, c.Server.TraceSize)
	}
	if c.Server.CaptureBytes < 0 || c.Server.CaptureBytes > maxCaptureBytes {
		v.add("server.capture_bytes", "must be from 0 (none) to %d, got %d", maxCaptureBytes, c.Server.CaptureBytes)
	}

	if n := c.Server.ReadLoops; n < 0 || n > MaxReadLoops {
		v.add("server.read_loops", "must be from 0 (one per CPU) to %d, got %d", MaxReadLoops, n)
	}

	v.limits(c)

	if len(c.Listen) == 0 {
		v.add("listen", "at least one listener is required")
	}
	var binds []binding
	exposed := -1 // the first listener off loopback
	for i, l := range c.Listen {
		field := indexPath("listen", i)
		if l.Transport != "udp" && l.Transport != "tcp" && l.Transport != "tls" {
			v.add(field+".transport", "unknown transport %q (want udp, tcp or tls)", l.Transport)
		}
		v.listenerTLS(field, l)
		host, port, ok := v.hostPort(field+".address", l.Address)
		if !ok {
			continue
		}
		ip, _ := hostIP(host)
		if exposed < 0 && !ip.IsLoopback() {
			exposed = i
		}
		b := binding{field: field, transport: l.Transport, kind: socketKind(l.Transport), addr: l.Address, ip: ip, port: port}
		if j := slices.IndexFunc(binds, b.clash); j >= 0 {
			v.clash(field+".address", b, binds[j])
			continue
		}
		binds = append(binds, b)
	}

	r := &c.Relay
	if _, err := netip.ParseAddr(r.Address); err != nil {
		v.add("relay.address", "invalid IP address %q", r.Address)
	}
	v.relayAddresses(r)
	portOK := true
	for _, p := range []struct {
		field string
		n     int
	}{{"relay.min_port", r.MinPort}, {"relay.max_port", r.MaxPort}} {
		if p.n < 1 || p.n > 65535 {
			v.add(p.field, "must be between 1 and 65535, got %d", p.n)
			portOK = false
		}
	}
	if portOK && r.MinPort > r.MaxPort {
		v.addNear("relay.max_port", "relay.min_port", "must not exceed relay.max_port (%d), got %d", r.MaxPort, r.MinPort)
	}
	for i, s := range r.AllowPeers {
		if _, err := netip.ParsePrefix(s); err != nil {
			v.add(indexPath("relay.allow_peers", i), "invalid CIDR %q (want a prefix such as \"127.0.0.0/8\" or \"::1/128\")", s)
		}
	}
	for _, l := range []struct {
		field string
		d     faults.Duration
	}{
		{"relay.allocation_lifetime", r.AllocationLifetime},
		{"relay.permission_lifetime", r.PermissionLifetime},
		{"relay.channel_lifetime", r.ChannelLifetime},
	} {
		if l.d.D() < MinLifetime || l.d.D() > MaxLifetime {
			v.add(l.field, "must be between %v and %v, got %v", MinLifetime, MaxLifetime, l.d)
		}
	}

	users := map[string]int{}
	for i, u := range c.Users {
		field := indexPath("users", i)
		switch {
		case u.Name == "":
			v.add(field+".name", "must not be empty")
		case strings.Contains(u.Name, ":"):
			v.add(field+".name", "must not contain ':' (TURN REST usernames use it), got %q", u.Name)
		default:
			if j, dup := users[u.Name]; dup {
				v.add(field+".name", "duplicate user %q (also users[%d])", u.Name, j)
			} else {
				users[u.Name] = i
			}
		}
		if u.Password == "" {
			v.add(field+".password", "must not be empty")
		}
		if u == builtinUser && exposed >= 0 {
			l := indexPath("listen", exposed)
			v.addNear(l+".address", field, "the built-in credential %s/%s is refused when %s.address (%s) is not loopback: name your own [[users]], or set [auth].secret and users = []",
				u.Name, u.Password, l, c.Listen[exposed].Address)
		}
	}

	if host, port, ok := v.hostPort("http.address", c.HTTP.Address); ok {
		ip, _ := hostIP(host)
		if c.HTTP.Token == "" && !ip.IsLoopback() {
			v.addNear("http.address", "http.token", "required when http.address is not loopback (%s)", c.HTTP.Address)
		}
		b := binding{field: "http", transport: "tcp", kind: "tcp", addr: c.HTTP.Address, ip: ip, port: port}
		if j := slices.IndexFunc(binds, b.clash); j >= 0 {
			v.clash("http.address", b, binds[j])
		}
	}
	for i, o := range c.HTTP.AllowedOrigins {
		u, err := url.Parse(o)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			v.add(indexPath("http.allowed_origins", i), "invalid origin %q (want an absolute http or https URL such as \"https://app.example.com\")", o)
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			v.add(indexPath("http.allowed_origins", i), "invalid origin %q (want scheme://host[:port] only, as browsers send it)", o)
		}
	}

	for _, name := range sortedMapKeys(c.Webhooks) {
		v.webhook(joinPath("webhooks", name), name, c.Webhooks[name])
	}

	v.rules("rules", c.Rules, c.Webhooks)
	for _, name := range sortedMapKeys(c.Scenarios) {
		field := joinPath("scenarios", name)
		if !faults.ValidName(name) {
			v.add(field, "invalid scenario name %q (want letters, digits, '_' and '-')", name)
		}
		sc := c.Scenarios[name]
		for _, fe := range faults.FieldErrors(sc.ValidateShape()) {
			v.add(field+"."+fe.Field, "%s", fe.Msg)
		}
		v.rules(field+".rules", sc.Rules, c.Webhooks)
		for i, st := range sc.Steps {
			v.rules(indexPath(field+".steps", i)+".rules", st.Rules, c.Webhooks)
		}
	}
	return v.errs, v.near
}

// builtinUser is default.toml's credential, known to everyone: it may only
// guard listeners on loopback.
var builtinUser = User{Name: "user", Password: "pass"}

func (v *validator) webhook(field, name string, w Webhook) {
	if !faults.ValidName(name) {
		v.add(field, "invalid webhook name %q (want letters, digits, '_' and '-')", name)
	}
	for _, fe := range faults.FieldErrors(w.Validate()) {
		v.add(field+"."+fe.Field, "%s", fe.Msg)
	}
}

// rules validates one rule set: each rule, ids unique within the set, and
// webhook names that exist.
func (v *validator) rules(field string, rules []faults.Rule, webhooks map[string]Webhook) {
	if len(rules) > faults.MaxRules {
		v.add(field, "%d rules, at most %d", len(rules), faults.MaxRules)
	}
	ids := map[string]int{}
	for i := range rules {
		r := &rules[i]
		prefix := indexPath(field, i)
		for _, fe := range faults.FieldErrors(r.Validate()) {
			v.add(prefix+"."+fe.Field, "%s", fe.Msg)
		}
		if r.ID != "" {
			if j, dup := ids[r.ID]; dup {
				v.add(prefix+".id", "duplicate id %q (also %s)", r.ID, indexPath(field, j))
			} else {
				ids[r.ID] = i
			}
		}
		if fe := faults.CheckWebhookName(r, sortedMapKeys(webhooks)); fe != nil {
			v.add(prefix+"."+fe.Field, "%s", fe.Msg)
		}
	}
	if err := faults.CheckRuleSetAutomata(rules); err != nil {
		v.add(field, "%v", err)
	}
}

// hostPort checks that addr is host:port with an IP address or "localhost"
// as host and a port from 0 to 65535.
func (v *validator) hostPort(field, addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err == nil {
		if _, aerr := netip.ParseAddr(h); aerr != nil && h != "localhost" {
			err = aerr
		}
	}
	if err == nil {
		port, err = strconv.Atoi(p)
		if err == nil && (port < 0 || port > 65535) {
			err = strconv.ErrRange
		}
	}
	if err != nil {
		v.add(field, "invalid address %q (want host:port with an IP address or localhost, such as \"127.0.0.1:3478\" or \"[::1]:0\")", addr)
		return "", 0, false
	}
	return h, port, true
}

// clash reports that b, at field, cannot be bound beside earlier.
func (v *validator) clash(field string, b, earlier binding) {
	if b.ip == earlier.ip {
		switch {
		case b.field == "http":
			v.add(field, "%s is %s's address too (%s), so serve could not bind both", b.addr, earlier.field, earlier)
		case b.addr == earlier.addr:
			v.add(field, "duplicate listener: %s is %s too", earlier.field, earlier)
		default:
			v.add(field, "%s is %s:%d, which %s (%s) binds too", b.addr, b.ip, b.port, earlier.field, earlier)
		}
		return
	}
	wild := b
	if !wild.ip.IsUnspecified() {
		wild = earlier
	}
	v.add(field, "%s overlaps %s (%s): %s takes %s port %d on every address, so serve could not bind both", b.addr, earlier.field, earlier, wild.addr, b.kind, b.port)
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
