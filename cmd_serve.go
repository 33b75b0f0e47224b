package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server"
)

var serveCmd = &command{
	name:     "serve",
	synopsis: "[-config FILE] [-scenario NAME] [-log-level LEVEL] [-log-format text|json] [-free-ports] [-ready-json] [-exit-with-stdin]",
	summary:  "serve STUN/TURN and the HTTP side until interrupted (the default command)",
	doc: `Serves STUN/TURN and the HTTP side (/control, /api/OP, /webhook/NAME,
/healthz, /version) until interrupted, then closes cleanly. Without
-config it serves the embedded default config.`,
	run: runServe,
}

// runServe is `stunfault serve` (and `stunfault` alone): it serves until ctx
// ends, then closes the server.
func runServe(ctx context.Context, inv *invocation) error {
	stdout, stderr := inv.stdout, inv.stderr
	fs := inv.flags()
	configPath := fs.String("config", "", "config `FILE` (TOML); the embedded default when empty")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	scenario := fs.String("scenario", "", "start with the rules of scenario `NAME` ([scenarios.NAME] in the config)")
	ready := addReadyFlags(fs.FlagSet)
	if _, err := fs.parse(inv.args, 0, 0, "no arguments"); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}

	cfg := config.Default()
	source := "embedded default config"
	if *configPath != "" {
		if cfg, err = loadConfig(*configPath); err != nil {
			return err
		}
		source = *configPath
	}
	if err := ready.prepare(&cfg); err != nil {
		return err
	}

	srv, err := server.New(cfg, server.WithLogger(logger))
	if err != nil {
		return err
	}
	if *scenario != "" {
		if _, err := srv.Faults().ActivateScenario(*scenario); err != nil {
			if have := srv.Faults().Scenarios(); len(have) > 0 {
				return inputErrorf("-scenario: no scenario %q in %s (it has %s)", *scenario, source, strings.Join(have, ", "))
			}
			return inputErrorf("-scenario: no scenario %q: %s has no scenarios (the embedded default config has none); give -config a file with [scenarios.NAME], or load some at runtime with `stunfault scenario load FILE`", *scenario, source)
		}
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	if err := ready.announce(stdout, srv, source); err != nil {
		return errors.Join(err, srv.Close())
	}
	ready.wait(ctx, inv.stdin, logger)
	logger.Info("shutting down")
	return srv.Close()
}

// printBanner tells the user where to point clients, once every socket is
// bound, with the real ports.
func printBanner(w io.Writer, srv *server.Server, source string) {
	cfg := srv.Config()
	fmt.Fprintf(w, "stunfault %s serving %s (seed %d)\n", server.BuildVersion().Version, source, srv.Seed())
	for _, l := range srv.Listeners() {
		if l.Transport == "udp" {
			fmt.Fprintf(w, "  STUN  stun:%s\n", l.Addr)
		}
	}
	for _, l := range srv.Listeners() {
		if l.Transport == "tls" {
			fmt.Fprintf(w, "  TURN  turns:%s?transport=tcp (and stuns:%s)\n", l.Addr, l.Addr)
			fmt.Fprintf(w, "        certificate %s, SPKI SHA-256 %s\n", l.CertFile, l.SPKI)
			fmt.Fprintf(w, "        Chromium trusts it with --ignore-certificate-errors-spki-list=%s\n", l.SPKI)
			continue
		}
		fmt.Fprintf(w, "  TURN  turn:%s?transport=%s\n", l.Addr, l.Transport)
	}
	var creds []string
	for _, u := range cfg.Users {
		creds = append(creds, u.Name+"/"+u.Password)
	}
	if len(creds) > 0 {
		fmt.Fprintf(w, "  users %s (realm %q)\n", strings.Join(creds, ", "), cfg.Server.Realm)
	}
	if cfg.Auth.Secret != "" {
		fmt.Fprintln(w, "  REST  credentials accepted: username EXPIRY:NAME, password base64(HMAC-SHA1(secret, username))")
	}
	rules := srv.Faults().List()
	switch sc := srv.Faults().Scenario(); {
	case sc != "":
		fmt.Fprintf(w, "  rules %d, from scenario %q\n", len(rules), sc)
	case len(rules) > 0:
		fmt.Fprintf(w, "  rules %d, from the config\n", len(rules))
	default:
		fmt.Fprintln(w, "  rules none: every message passes")
	}
	fmt.Fprintf(w, "  dashboard %s/ (open it in a browser: the timeline, the rules and their switches)\n", srv.HTTPURL())
	fmt.Fprintf(w, "  HTTP  %s (/healthz, /version, /webhook/NAME, /api/OP)\n", srv.HTTPURL())
	fmt.Fprintf(w, "  control %s (stunfault rules|scenario|events|journal|stats)\n", srv.ControlURL())
}

// newLogger builds the slog logger for -log-level and -log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, inputErrorf("-log-level: unknown level %q (want debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, inputErrorf("-log-format: unknown format %q (want text or json)", format)
}
