// Package config reads stunfault's TOML configuration into a [Config].
//
// [Default] is the built-in configuration (default.toml, embedded). [Load] and
// [Parse] read a file over it: plain tables ([server], [relay], [auth],
// [http]) are merged key by key, while arrays of tables and maps ([[listen]],
// [[users]], [[rules]], [webhooks], [scenarios]) replace the default when
// present. Every problem found is reported as an [*Error] naming the file,
// line and key path ("rules[1].match.methods[0]"); [Config.Validate] runs the
// same checks on a Config built in Go.
//
// config imports faults (rules are [faults.Rule]) but nothing under server:
// the server takes a Config, never the other way round.
package config
