package main

import (
	"fmt"
	"regexp"
	"strings"
)

// sheetLevel is one "## Level N" section of the exercise sheet, README.md.
type sheetLevel struct {
	name    string   // the scenario, "level1"
	line    int      // where its heading is
	serve   string   // its first sh block: the command that serves it
	run     []string // its second sh block: the commands, one a line
	want    []string // its text block: the lines to look for, in order
	options []string // its "Check" question's option letters, in order
}

var (
	levelHeading = regexp.MustCompile(`^## Level ([0-9]+)$`)
	optionLine   = regexp.MustCompile(`^- ([a-z])\) `)
)

// parseSheet reads the levels of the sheet. Each level section has, in this
// order, an sh block of one line (the serve command), an sh block (the
// commands), and a text block (the lines to look for); a section built
// otherwise is an error naming its line.
func parseSheet(md string) ([]sheetLevel, error) {
	var levels []sheetLevel
	var cur *sheetLevel
	var block []string
	var blocks [][]string // the current level's fenced blocks, each with its info string first
	fenced := false
	finish := func() error {
		if cur == nil {
			return nil
		}
		if len(blocks) != 3 || blocks[0][0] != "sh" || blocks[1][0] != "sh" || blocks[2][0] != "text" {
			var got []string
			for _, b := range blocks {
				got = append(got, b[0])
			}
			return fmt.Errorf("README.md:%d: %s has fenced blocks %v, want sh (serve), sh (run), text (look for)", cur.line, cur.name, got)
		}
		if len(blocks[0]) != 2 {
			return fmt.Errorf("README.md:%d: %s: the serve block has %d lines, want 1", cur.line, cur.name, len(blocks[0])-1)
		}
		cur.serve = blocks[0][1]
		cur.run = blocks[1][1:]
		cur.want = blocks[2][1:]
		levels = append(levels, *cur)
		cur, blocks = nil, nil
		return nil
	}
	for i, l := range strings.Split(md, "\n") {
		switch {
		case fenced && l == "```":
			blocks = append(blocks, block)
			fenced = false
		case fenced:
			block = append(block, l)
		case strings.HasPrefix(l, "```"):
			fenced, block = true, []string{strings.TrimPrefix(l, "```")}
		case strings.HasPrefix(l, "## "):
			if err := finish(); err != nil {
				return nil, err
			}
			if m := levelHeading.FindStringSubmatch(l); m != nil {
				cur = &sheetLevel{name: "level" + m[1], line: i + 1}
			}
		case cur != nil && optionLine.MatchString(l):
			cur.options = append(cur.options, optionLine.FindStringSubmatch(l)[1])
		}
	}
	if fenced {
		return nil, fmt.Errorf("README.md: a fenced block is not closed")
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return levels, nil
}

// wantLine compiles a "look for" line of the sheet: it matches a whole
// output line, both with their runs of spaces and tabs taken as one space
// and trimmed, "…" standing for any text.
func wantLine(s string) *regexp.Regexp {
	parts := strings.Split(normalize(s), "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// normalize trims s and turns each run of white space into one space.
func normalize(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// missing returns the first of want not found in out's lines, in order
// after the lines the previous ones matched, or "" when all are there.
func missing(out string, want []string) string {
	lines := strings.Split(out, "\n")
	i := 0
	for _, w := range want {
		re := wantLine(w)
		for i < len(lines) && !re.MatchString(normalize(lines[i])) {
			i++
		}
		if i == len(lines) {
			return w
		}
		i++
	}
	return ""
}
