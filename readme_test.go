package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// goLink is a Markdown link to a Go file of the repository.
var goLink = regexp.MustCompile(`\]\(([^)\s]+\.go)\)`)

// The README's Go snippets that name the file they come from are quotes of
// it: each line of code (comments aside) stands in that file, in the same
// order, so a snippet cannot drift from code that compiles and is tested.
func TestREADMESnippetsAreQuotedFromCode(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	source := "" // the .go file the text before the current block links to
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "#"):
			source = ""
		case strings.HasPrefix(l, "```go") && source != "":
			start := i + 1
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			}
			checkQuote(t, source, start+1, lines[start:i])
			checked = append(checked, source)
			source = ""
		case strings.HasPrefix(l, "```"):
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			}
			source = ""
		default:
			if m := goLink.FindAllStringSubmatch(l, -1); m != nil {
				source = m[len(m)-1][1]
			}
		}
	}
	for _, want := range []string{"examples/embed/main.go", "examples/fixture/fixture_test.go"} {
		if !slices.Contains(checked, want) {
			t.Errorf("README quotes no snippet from %s", want)
		}
	}
}

// checkQuote checks that the code of snippet (README lines from line) is a
// subsequence of the code lines of file.
func checkQuote(t *testing.T, file string, line int, snippet []string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("README.md:%d quotes %s: %v", line, file, err)
		return
	}
	var code []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if c := codeOf(l); c != "" {
			code = append(code, c)
		}
	}
	at := 0
	for j, l := range snippet {
		c := codeOf(l)
		if c == "" {
			continue
		}
		k := slices.Index(code[at:], c)
		if k < 0 {
			t.Errorf("README.md:%d: %q is not in %s (after what the lines before it quote)", line+j, strings.TrimSpace(l), file)
			return
		}
		at += k + 1
	}
}

// codeOf is a Go line without its comment, its spacing collapsed.
func codeOf(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0 && r == quote && (quote == '`' || i == 0 || l[i-1] != '\\'):
			quote = 0
		case quote != 0:
		case r == '"' || r == '`' || r == '\'':
			quote = r
		case strings.HasPrefix(l[i:], "//"):
			l = l[:i]
		}
		if len(l) <= i {
			break
		}
	}
	return strings.Join(strings.Fields(l), " ")
}
