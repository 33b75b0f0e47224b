package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// --help, -h and help print the command list, every command in it, serve's
// flags included; help COMMAND and COMMAND -h print that command's usage.
func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		r := runCLI(t, "", args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d, stderr %q; want 0 and nothing on stderr", args, r.code, r.stderr)
		}
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  stunfault "+c.name+" ") && !strings.Contains(r.stdout, "\n  stunfault "+c.name+"\n") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, r.stdout)
			}
		}
		for _, w := range []string{"-scenario NAME", "-config FILE", "stunfault help [COMMAND]", "STUNFAULT_TOKEN"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%v lacks %q:\n%s", args, w, r.stdout)
			}
		}
	}
}

func TestHelpCommandPrintsItsUsage(t *testing.T) {
	flags := map[string][]string{
		"serve":    {"-config", "-scenario", "-log-level", "-ready-json"},
		"check":    {"FILE|-"},
		"rules":    {"rules add [FILE|-]", "-control", "-token", "-label"},
		"scenario": {"-control", "-json"},
		"events":   {"-follow", "-since", "-rule"},
		"journal":  {"verify -expect N", "-method", "-limit"},
		"stats":    {"-json", "-control"},
		"webhook":  {"-name", "-body-file", "-allow-remote"},
		"version":  {"-json"},
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			help := runCLI(t, "", "help", c.name)
			dashH := runCLI(t, "", c.name, "-h")
			if help.code != 0 || dashH.code != 0 {
				t.Fatalf("exit status %d (help %s) and %d (%s -h), want 0\n%s%s", help.code, c.name, dashH.code, c.name, help.text(), dashH.text())
			}
			if help.stdout != dashH.stdout {
				t.Errorf("help %s and %s -h differ:\n%s\n---\n%s", c.name, c.name, help.stdout, dashH.stdout)
			}
			if !strings.HasPrefix(help.stdout, "Usage: stunfault "+c.name) {
				t.Errorf("help %s does not start with its usage line:\n%s", c.name, help.stdout)
			}
			for _, w := range flags[c.name] {
				if !strings.Contains(help.stdout, w) {
					t.Errorf("help %s lacks %q:\n%s", c.name, w, help.stdout)
				}
			}
		})
	}
	if r := runCLI(t, "", "help", "frobnicate"); r.code != 2 || !strings.Contains(r.text(), `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d\n%s", r.code, r.text())
	}
}

// A bad flag's error is printed once (by main), with no usage dump.
func TestBadFlagErrorPrintedOnce(t *testing.T) {
	for _, args := range [][]string{{"serve", "-nope"}, {"-nope"}, {"rules", "list", "-nope"}, {"webhook", "-nope"}, {"events", "-n", "many"}} {
		r := runCLI(t, "", args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
		flag := args[len(args)-1]
		if n := strings.Count(r.text(), flag); n != 1 {
			t.Errorf("%v: %q appears %d times, want once:\n%s", args, flag, n, r.text())
		}
		if r.stdout != "" || r.stderr != "" || !strings.Contains(r.text(), "stunfault help ") {
			t.Errorf("%v: want only the error, pointing to help:\n%s", args, r.text())
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "stunfault ") || !strings.Contains(r.stdout, "pion/turn") {
		t.Errorf("version: exit %d\n%s", r.code, r.text())
	}
	r = runCLI(t, "", "version", "-json")
	var m map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &m); r.code != 0 || err != nil {
		t.Fatalf("version -json: exit %d, %v:\n%s", r.code, err, r.text())
	}
	for _, k := range []string{"version", "go", "pion_turn", "pion_stun"} {
		if m[k] == "" {
			t.Errorf("version -json lacks %q:\n%s", k, r.stdout)
		}
	}
	if r := runCLI(t, "", "version", "extra"); r.code != 2 || !strings.Contains(r.text(), `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, want 2\n%s", r.code, r.text())
	}
}
