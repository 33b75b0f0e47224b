package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/stunfault/stunfault/config"
)

// TestMain fails the package when a level leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// readSheet returns the levels of the exercise sheet, README.md.
func readSheet(t *testing.T) []sheetLevel {
	t.Helper()
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	sheet, err := parseSheet(string(md))
	if err != nil {
		t.Fatal(err)
	}
	return sheet
}

// loadLab returns lab.toml.
func loadLab(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.Parse(labTOML, "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The sheet has a section for every level of lab.toml, in order, each with
// commands, lines to look for, and a question whose options -check knows.
func TestSheetCoversEveryLevel(t *testing.T) {
	t.Parallel()
	var names []string
	for _, lv := range readSheet(t) {
		names = append(names, lv.name)
		if len(lv.run) == 0 || len(lv.want) == 0 {
			t.Errorf("README.md:%d: %s has %d commands and %d lines to look for", lv.line, lv.name, len(lv.run), len(lv.want))
		}
		q, ok := questions[lv.name]
		if !ok {
			t.Errorf("README.md:%d: %s has no question in questions.go", lv.line, lv.name)
			continue
		}
		var letters []string
		for l := range q.feedback {
			letters = append(letters, l)
		}
		slices.Sort(letters)
		if !slices.Equal(lv.options, letters) {
			t.Errorf("README.md:%d: %s's options are %v, -check knows %v", lv.line, lv.name, lv.options, letters)
		}
		if _, ok := q.feedback[q.right]; !ok {
			t.Errorf("%s: the right answer %q is not an option", lv.name, q.right)
		}
	}
	if want := levels(loadLab(t)); !slices.Equal(names, want) {
		t.Errorf("README.md has levels %v, lab.toml %v", names, want)
	}
}

// runLab runs the command with args and returns its exit status and output.
func runLab(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// go run ./examples/lab lists the levels and how to use them, and gives no
// answer away: no scenario's or rule's description, no rule id.
func TestListHidesTheAnswers(t *testing.T) {
	t.Parallel()
	code, out, errOut := runLab()
	if code != exitRight || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"7 levels (level1, level2, level3, level4, level5, level6, level7)",
		"go run . -config examples/lab/lab.toml -scenario level1", "go run . scenario level2",
		"go run ./examples/lab -check N LETTER"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cfg := loadLab(t)
	for name, sc := range cfg.Scenarios {
		secrets := []string{sc.Description}
		for _, r := range sc.Rules {
			secrets = append(secrets, r.ID, r.Description)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output gives %s's %q away:\n%s", name, s, out)
			}
		}
	}
}

// -check N LETTER says right, with why, for the right letter only, and wrong,
// with what rules it out, for every other option; bad input is a usage error
// naming what was expected.
func TestCheck(t *testing.T) {
	t.Parallel()
	for _, lv := range readSheet(t) {
		n := strings.TrimPrefix(lv.name, "level")
		q := questions[lv.name]
		for _, letter := range lv.options {
			code, out, errOut := runLab("-check", n, letter)
			want, wantCode := "level "+n+", "+letter+": wrong. ", exitWrong
			if letter == q.right {
				want, wantCode = "level "+n+", "+letter+": right. ", exitRight
			}
			if code != wantCode || !strings.HasPrefix(out, want) || len(out) < len(want)+20 || errOut != "" {
				t.Errorf("-check %s %s: exit %d, %q, stderr %q; want exit %d, %q and why", n, letter, code, out, errOut, wantCode, want)
			}
		}
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-check", "9", "a"}, "-check 9: no such level (the lab has levels 1 to 7)"},
		{[]string{"-check", "0", "a"}, "-check 0: no such level"},
		{[]string{"-check", "2"}, "-check 2 wants one answer, a letter from a, b, c or d, got 0 arguments"},
		{[]string{"-check", "2", "a", "b"}, "got 2 arguments"},
		{[]string{"-check", "2", "e"}, `-check 2: "e" is not one of the answers a, b, c or d`},
		{[]string{"-check", "two", "a"}, `invalid value "two" for flag -check`},
		{[]string{"level2"}, `unexpected arguments ["level2"]`},
	}
	for _, tt := range tests {
		code, out, errOut := runLab(tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, exitUsage, tt.wantErr)
		}
	}
	// An answer may be written as the sheet shows it, "b)", or in capitals.
	if code, out, _ := runLab("-check", "2", "B)"); code != exitRight || !strings.HasPrefix(out, "level 2, b: right.") {
		t.Errorf("-check 2 B): exit %d, %q", code, out)
	}
}
