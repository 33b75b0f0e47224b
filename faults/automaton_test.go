package faults

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
)

// patternCases are expressions and inputs where an automaton could easily
// disagree with Go's regexp: assertions at the ends and around '\n', word
// boundaries next to non-ASCII runes, case folding beyond ASCII, invalid
// UTF-8, runes above U+FFFF. Each pair is checked against regexp.Match.
var patternCases = []struct {
	expr   string
	inputs []string
}{
	{"", []string{"", "x"}},
	{"^", []string{"", "x"}},
	{"$", []string{"", "x"}},
	{"^$", []string{"", "x", "\n"}},
	{`\A\z`, []string{"", "x"}},
	{"^abc$", []string{"abc", "abc\n", "xabc", "abcx", "\nabc"}},
	{"(?m)^abc$", []string{"abc", "x\nabc\ny", "x\nabcd", "abc\n", "\nabc"}},
	{"(?m)^$", []string{"", "x", "x\n", "x\n\ny", "\n"}},
	{"(?m)$", []string{"", "x"}},
	{"(?m)a$", []string{"a\nb", "ab\n", "ba"}},
	{`\bfoo\b`, []string{"foo", "a foo b", "afoo", "foob", "föo", "éfooé", "_foo", "foo_", "\nfoo\n"}},
	{`\Bfoo\B`, []string{"foo", "afoob", "afoo", "éfooé", ""}},
	{`\b`, []string{"", " ", "a", "é"}},
	{`\B`, []string{"", " ", "a", "ab", "é"}},
	{`^\b`, []string{"a", " a", ""}},
	{`\b$`, []string{"a", "a ", ""}},
	{`x\b`, []string{"x", "xy", "x\xff", "xé"}},
	{"(?i)k", []string{"K", "k", "\u212a", "x"}},
	{"(?i)\u212a", []string{"K", "k", "\u212a", "x"}},
	{"(?i)straße", []string{"STRASSE", "STRAßE", "strasse", "Straße", "STRAẞE"}},
	{"(?i)[k-m]+x", []string{"\u212aLx", "klmx", "KLMx", "jx"}},
	{"(?i)σ", []string{"Σ", "ς", "σ", "s"}},
	{`(?i)\x{10400}`, []string{"\U00010428", "\U00010400", "x"}},
	{"[\U00010000-\U0010FFFF]", []string{"a", "\U00010000", "\U0010FFFF", "\uFFFF", "\xf4\x90\x80\x80"}},
	{"^[^a]$", []string{"\xff", "\uFFFD", "a", "", "ab", "\xf0\x9f"}},
	{"\uFFFD", []string{"\xff", "\xc0\xaf", "\xed\xa0\x80", "ok", "\uFFFD"}},
	{"^.$", []string{"\xff", "\xe2\x82", "é", "\n", "ab"}},
	{"^..$", []string{"\xe2\x82", "\xe2\x82\xac", "\xf0\x9f\x98"}},
	{"a.c", []string{"abc", "a\nc", "aéc", "a\xffc"}},
	{"(?s)a.c", []string{"a\nc"}},
	{`.{0,1000}[^a]`, []string{strings.Repeat("a", 508), strings.Repeat("a", 508) + "b", "\n"}},
	{`[ab]*a[ab]{3}$`, []string{"abbb", "babab", "bbbb", "aaaa"}},
	{"^alice:", []string{"alice:bob", "bob:alice:", ""}},
	{"(a|b)*c|d", []string{"ababc", "abab", "d", ""}},
	{`\pL+\d`, []string{"école9", "9", "é9"}},
	{`[^\x00-\x{10FFFF}]`, []string{"", "a", "\xff"}},
	{`x*`, []string{"", "y"}},
	{`\Qa.b\E`, []string{"a.b", "axb"}},
	{`(?U)a+?b`, []string{"aab", "ab", "b"}},
	{`a\z|^b`, []string{"a", "ab", "b", "cb"}},
}

func TestPatternMatchesRegexp(t *testing.T) {
	for _, tt := range patternCases {
		p, err := CompilePattern(tt.expr)
		if err != nil {
			t.Errorf("CompilePattern(%q) = %v", tt.expr, err)
			continue
		}
		re := regexp.MustCompile(tt.expr)
		for _, s := range tt.inputs {
			if got, want := p.Match([]byte(s)), re.MatchString(s); got != want {
				t.Errorf("Pattern %q on %q = %v, regexp says %v", tt.expr, s, got, want)
			}
			if got, want := p.dfa.match([]byte(s)), re.MatchString(s); got != want {
				t.Errorf("automaton %q on %q = %v, regexp says %v", tt.expr, s, got, want)
			}
		}
	}
}

// The automaton bound: a pattern that needs too many states gets an error
// that says so, short and naming no more than the pattern's start.
func TestPatternAutomatonBound(t *testing.T) {
	tests := []struct {
		expr string
		ok   bool
	}{
		{"[ab]*a[ab]{10}", true},    // 2^11 states
		{"[ab]*a[ab]{16}", false},   // 2^17 states
		{`(?i)\bfoo\b.*bar$`, true}, // assertions cost a few states
		{strings.Repeat("a", 1000), true},
	}
	for _, tt := range tests {
		_, err := CompilePattern(tt.expr)
		if tt.ok && err != nil {
			t.Errorf("CompilePattern(%q) = %v, want it accepted", tt.expr, err)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "automaton states")) {
			t.Errorf("CompilePattern(%q) = %v, want an error about automaton states", tt.expr, err)
		}
	}
}

// Building an automaton stops with an error past its work bound.
func TestAutomatonWorkBound(t *testing.T) {
	tree, err := syntax.Parse(worstPattern, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildAutomatonWithin(prog, maxBuildWork); err != nil {
		t.Fatalf("within maxBuildWork: %v", err)
	}
	_, err = buildAutomatonWithin(prog, 100_000)
	if err == nil || !strings.Contains(err.Error(), "too many threads each to build") {
		t.Errorf("within 100000 = %v, want the work error", err)
	}
}

// FuzzPatternMatch checks that every pattern the validator accepts answers
// as regexp.Match does, on any input.
func FuzzPatternMatch(f *testing.F) {
	for _, tt := range patternCases {
		for _, s := range tt.inputs {
			f.Add(tt.expr, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, expr string, input []byte) {
		if len(input) > 4096 {
			return
		}
		p, err := CompilePattern(expr)
		if err != nil {
			if _, rerr := regexp.Compile(expr); rerr == nil && len(expr) <= MaxPatternBytes && !strings.Contains(err.Error(), "at most") && !strings.Contains(err.Error(), "automaton states") {
				t.Fatalf("CompilePattern(%q) = %v, but regexp compiles it", expr, err)
			}
			return
		}
		re := regexp.MustCompile(expr)
		if got, want := p.Match(input), re.Match(input); got != want {
			t.Fatalf("Pattern %q on %q = %v, regexp says %v", expr, input, got, want)
		}
	})
}

func mustPattern(tb testing.TB, expr string) *Pattern {
	tb.Helper()
	p, err := CompilePattern(expr)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkCompilePattern measures compiling the patterns that cost most
// to build, near the instruction bound and near the automaton bound, past
// the cache.
func BenchmarkCompilePattern(b *testing.B) {
	for _, expr := range []string{worstPattern, worstRunesPattern, worstTablePattern} {
		b.Run(expr[:min(len(expr), 12)], func(b *testing.B) {
			for b.Loop() {
				if _, err := compilePattern(expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Rules with the same expression share its automaton while one is alive,
// each with a Pattern of its own.
func TestPatternsShareAutomata(t *testing.T) {
	p1, p2 := mustPattern(t, worstPattern), mustPattern(t, worstPattern)
	if p1 == p2 || p1.shared != p2.shared {
		t.Errorf("two compiles of %q: Patterns %p %p, automata %p %p; want two Patterns, one automaton", worstPattern, p1, p2, p1.shared, p2.shared)
	}
	if p3 := mustPattern(t, worstPattern+"b"); p3.shared == p1.shared {
		t.Error("another expression shares the automaton")
	}
}

// TestPatternRandomDifferential compares patterns built from the pieces an
// automaton gets wrong most easily (assertions, case folding, classes,
// runes of every width, repetitions) with regexp.Match, on inputs from
// the same pieces and invalid UTF-8: a deterministic sample of what
// FuzzPatternMatch explores, run by every go test.
func TestPatternRandomDifferential(t *testing.T) {
	atoms := []string{"a", "b", "k", ".", "[ab]", "[^a]", `\b`, `\B`, "^", "$", `\A`, `\z`, "(?i:k)", `\x{212A}`,
		"é", `\pL`, `\d`, `[\x{10000}-\x{10FFFF}]`, `\x{FFFD}`, `(?s:.)`, `\n`, "(?m:^)", "(?m:$)", "(?i:é)", `\w`, `\s`}
	inputs := []string{"a", "b", "k", "K", "\u212a", "é", "É", "\n", " ", "\xff", "\U00010400", "1", "_", "\xe2\x82"}
	rng := rand.New(rand.NewPCG(1, 2))
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || rng.IntN(3) == 0 {
			return atoms[rng.IntN(len(atoms))]
		}
		switch rng.IntN(4) {
		case 0:
			return gen(depth-1) + gen(depth-1)
		case 1:
			return "(?:" + gen(depth-1) + "|" + gen(depth-1) + ")"
		case 2:
			return "(?:" + gen(depth-1) + ")" + []string{"*", "+", "?", "{0,3}", "{2}"}[rng.IntN(5)]
		}
		return gen(depth-1) + gen(depth-1) + gen(depth-1)
	}
	for range 1000 {
		expr := gen(4)
		p, err := CompilePattern(expr)
		if err != nil {
			t.Fatalf("CompilePattern(%q) = %v", expr, err)
		}
		re := regexp.MustCompile(expr)
		for range 8 {
			var in []byte
			for range rng.IntN(8) {
				in = append(in, inputs[rng.IntN(len(inputs))]...)
			}
			if got, want := p.Match(in), re.Match(in); got != want {
				t.Fatalf("Pattern %q on %q = %v, regexp says %v", expr, in, got, want)
			}
		}
	}
}
