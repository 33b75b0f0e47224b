// Package webhook is the simulated webhook endpoint and the Signals it feeds
// to the engine.
//
// A [Hub] answers POST /webhook/{name} for every [webhooks.NAME] of the
// config, standing in for the CRM endpoint a contact flow calls: in sync mode
// it holds each request open for the webhook's latency, in async mode it
// answers 202 at once and keeps the work pending for the latency. It records
// every request (start, end, body, body size, header bytes, remote address)
// and implements [faults.Signals], so rules with a match.webhook section see
// the held and pending counts and the recent requests.
//
// Time comes from a [faults.Clock], so tests move it forward instead of
// sleeping. The package imports config and faults; it must not import package
// server (the server mounts a Hub at "/webhook/" and passes it to the engine).
package webhook
