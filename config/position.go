package config

import (
	"strconv"
	"strings"
)

// keyLines maps key paths, spelled as in error messages
// ("rules[1].match.methods[0]", "webhooks.servicenow.mode"), to the line
// (from 1) where the TOML text defines them.
//
// The TOML decoder keeps key positions to itself (BurntSushi/toml v1.6.0
// records them in an unexported field, without array indexes), so
// scanKeyLines finds them with a small scanner of its own.
type keyLines map[string]int

// line returns the line of path, or of its closest ancestor the text defines
// (a key the file leaves out is reported at its table), or 0.
func (kl keyLines) line(path string) int {
	for path != "" {
		if n, ok := kl[path]; ok {
			return n
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath drops the last element of path: "a.b[2]" -> "a.b" -> "a".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// joinPath appends key to the path p.
func joinPath(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

// indexPath appends an array index to the path p.
func indexPath(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

// scanKeyLines records the line of every key, table header, array element
// and array-of-tables element in src. src must be valid TOML (it has been
// decoded already); the scanner does not check syntax, it only tracks
// tables ([a.b]), arrays of tables ([[rules]], counted per parent), dotted
// keys, inline tables, arrays and the strings that can hide brackets,
// quotes or newlines.
func scanKeyLines(src string) keyLines {
	s := &lineScanner{src: src, line: 1, lines: keyLines{}, arrays: map[string]int{}}
	s.document()
	return s.lines
}

type lineScanner struct {
	src    string
	pos    int
	line   int
	lines  keyLines
	arrays map[string]int // array-of-tables path -> elements seen so far
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

func (s *lineScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *lineScanner) advance() {
	if s.eof() {
		return
	}
	if s.src[s.pos] == '\n' {
		s.line++
	}
	s.pos++
}

// mark records the current line for path unless it is known already.
func (s *lineScanner) mark(path string) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = s.line
	}
}

// skipSpace skips blanks within a line.
func (s *lineScanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t' || c == '\r'; c = s.peek() {
		s.advance()
	}
}

// skipBlank skips blanks, newlines and comments.
func (s *lineScanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance()
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

// skipLine skips the rest of the line, newline included.
func (s *lineScanner) skipLine() {
	for !s.eof() && s.peek() != '\n' {
		s.advance()
	}
	s.advance()
}

func (s *lineScanner) document() {
	table := ""
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
		}
		s.skipLine()
	}
}

// header reads [a.b] or [[a.b]] and returns the path keys below it go to.
func (s *lineScanner) header() string {
	s.advance()
	array := s.peek() == '['
	if array {
		s.advance()
	}
	keys := s.keys()
	if len(keys) == 0 {
		return ""
	}
	var p string
	if array {
		p = joinPath(s.resolve(keys[:len(keys)-1]), keys[len(keys)-1])
		s.mark(p)
		n := s.arrays[p]
		s.arrays[p] = n + 1
		p = indexPath(p, n)
		s.mark(p)
	} else {
		p = s.resolve(keys)
	}
	return p
}

// resolve turns the keys of a table header into a path, descending into the
// latest element of every array of tables on the way ([rules.match] after a
// third [[rules]] is "rules[2].match").
func (s *lineScanner) resolve(keys []string) string {
	p := ""
	for _, k := range keys {
		p = joinPath(p, k)
		s.mark(p)
		if n := s.arrays[p]; n > 0 {
			p = indexPath(p, n-1)
		}
	}
	return p
}

// keyValue reads "a.b = value" in the table at path table.
func (s *lineScanner) keyValue(table string) {
	p := table
	for _, k := range s.keys() {
		p = joinPath(p, k)
		s.mark(p)
	}
	s.skipSpace()
	if s.peek() == '=' {
		s.advance()
	}
	s.skipSpace()
	s.value(p)
}

// keys reads a dotted key: bare, "quoted" or 'literal' parts.
func (s *lineScanner) keys() []string {
	var ks []string
	for {
		s.skipSpace()
		switch s.peek() {
		case '"', '\'':
			ks = append(ks, s.str())
		default:
			start := s.pos
			for c := s.peek(); c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'; c = s.peek() {
				s.advance()
			}
			ks = append(ks, s.src[start:s.pos])
		}
		s.skipSpace()
		if s.peek() != '.' {
			return ks
		}
		s.advance()
	}
}

// value reads one value and records the paths inside it.
func (s *lineScanner) value(p string) {
	switch s.peek() {
	case '"', '\'':
		s.str()
	case '{':
		s.advance()
		for {
			s.skipBlank()
			if s.eof() || s.peek() == '}' {
				s.advance()
				return
			}
			start := s.pos
			s.keyValue(p)
			s.skipBlank()
			if s.peek() == ',' {
				s.advance()
			} else if s.pos == start {
				s.advance()
			}
		}
	case '[':
		s.advance()
		for i := 0; ; i++ {
			s.skipBlank()
			if s.eof() || s.peek() == ']' {
				s.advance()
				return
			}
			start := s.pos
			q := indexPath(p, i)
			s.mark(q)
			s.value(q)
			s.skipBlank()
			if s.peek() == ',' {
				s.advance()
			} else if s.pos == start {
				s.advance()
			}
		}
	default: // number, boolean or datetime (which may hold a space)
		for !s.eof() && !strings.ContainsRune(",]}\n#", rune(s.peek())) {
			s.advance()
		}
	}
}

// str reads a basic, literal or multi-line string and returns its value
// (escapes decoded as far as Go's rules agree with TOML's).
func (s *lineScanner) str() string {
	q := s.peek()
	start := s.pos
	if strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(q), 3)) {
		s.pos += 3
		for !s.eof() {
			if q == '"' && s.peek() == '\\' {
				s.advance()
				s.advance()
				continue
			}
			if strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(q), 3)) {
				s.pos += 3
				for i := 0; i < 2 && s.peek() == q; i++ { // up to two quotes may close the content
					s.pos++
				}
				break
			}
			s.advance()
		}
		return s.src[start:s.pos]
	}
	s.advance()
	for !s.eof() && s.peek() != q && s.peek() != '\n' {
		if q == '"' && s.peek() == '\\' {
			s.advance()
		}
		s.advance()
	}
	s.advance()
	raw := s.src[start:s.pos]
	if q == '\'' {
		return strings.Trim(raw, "'")
	}
	if v, err := strconv.Unquote(raw); err == nil {
		return v
	}
	return strings.Trim(raw, `"`)
}
