package faults

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"regexp/syntax"
	"slices"
	"sort"
	"unicode"
	"unicode/utf8"
)

// An automaton is a regular expression compiled, when the rule is, into a
// deterministic finite automaton that answers "does it match anywhere in
// b" (an unanchored search, what regexp.Match answers) in one table step per
// rune of b, whatever the expression: matching costs a few nanoseconds per
// input byte at most, and the expression only decides the table's size, which
// MaxPatternTransitions bounds.
//
// The automaton runs over rune classes, not runes: the runes are cut at
// every boundary of a range some instruction of the program matches (and
// at '\n' and the word characters [0-9A-Za-z_], which the empty-width
// assertions look at), and runs of runes that every instruction treats
// alike are one class. Bytes find their class in a table (ASCII runes,
// and the bytes that can only be U+FFFD); other runes in a page table of
// the BMP when the class runs are many (buildPages), else by binary
// search. Input is decoded as Go's regexp decodes it: an invalid UTF-8
// byte is U+FFFD of width 1.
//
// A state is the set of program threads waiting to read the next rune (the
// start thread is in every set: the search may start at every position),
// with the kind of the rune before it (none, '\n', word character, other),
// as RE2's DFA carries it. A transition on a class first follows the
// empty-width instructions whose assertion holds between the previous rune
// and a rune of that class (^ $ \A \z, (?m) line anchors, \b \B); a thread
// that reaches Match there is a match, and the search stops. At the end of
// the input the same closure with no next rune decides. States from which
// no match can follow are folded into one dead state, and states from
// which every input matches into one match state, so matching also stops
// early on them.
type automaton struct {
	ncls      int         // classes
	shift     uint8       // a state's row in trans is 1<<shift wide, at least ncls
	start     uint16      // a state is the offset of its row in trans (or stateDead, stateMatch)
	byteClass [256]uint16 // the class of each ASCII rune and invalid byte (U+FFFD's), classDecode for the others
	lo        []rune      // above ASCII: the first rune of each run, ascending (lo[0] = utf8.RuneSelf)
	cls       []uint16    // the class of the runes from lo[i] to lo[i+1]-1
	trans     []uint16    // trans[s+c]: the state after state s reads a rune of class c
	final     []bool      // final[s>>shift]: state s matches at the end of the input

	pages  []uint16 // nil, or the class of each page of the BMP (see buildPages)
	blocks []uint16 // the classes of the mixed pages, 64 each
}

// The two states a search stops in.
const (
	stateDead  = 0xFFFE // no match can follow
	stateMatch = 0xFFFF // a match was found (or every input matches from here)
)

// MaxPatternTransitions bounds a regular expression's automaton: its
// states times its rune classes, 2 bytes each in the table (128 KiB at
// the bound). Expressions that count up to large numbers inside an
// unanchored search, or that remember many possible positions at once
// ([ab]*a[ab]{20}), need many states; beyond the bound the rule is
// refused.
const MaxPatternTransitions = 1 << 16

// match reports whether b holds a match.
func (a *automaton) match(b []byte) bool {
	s := a.start
	if s >= stateDead {
		return s == stateMatch
	}
	trans, byteClass := a.trans, &a.byteClass
	for i := 0; i < len(b); i++ {
		x := b[i]
		c := byteClass[x]
		if c == classDecode {
			if x < 0xE0 && i+1 < len(b) && b[i+1]^0x80 < 0x40 && a.pages != nil {
				// A 2-byte rune (x >= 0xC2: not overlong) in the page
				// table: runeClass inlined.
				r := int(x&0x1F)<<6 | int(b[i+1]^0x80)
				if c = a.pages[r>>pageBits]; c&pageMixed != 0 {
					c = a.blocks[int(c&^pageMixed)<<pageBits|r&(1<<pageBits-1)]
				}
				i++
			} else {
				var w int
				c, w = a.runeClass(b[i:])
				i += w - 1
			}
		}
		s = trans[int(s)+int(c)]
		if s >= stateDead {
			return s == stateMatch
		}
	}
	return a.final[s>>a.shift]
}

// classDecode is byteClass's mark on the bytes that may start a rune
// above ASCII: the rune must be decoded. The other bytes above ASCII
// (continuation bytes alone, 0xC0, 0xC1, 0xF5-0xFF) are U+FFFD of width
// 1, as utf8.DecodeRune reads them.
const classDecode = 0xFFFF

// runeClass returns the class of the rune above ASCII at the start of b,
// and its width, decoding as utf8.DecodeRune does. It is apart from match
// to keep the loop's registers free.
//
//go:noinline
func (a *automaton) runeClass(b []byte) (uint16, int) {
	var r rune
	w := 2
	if x := b[0]; x < 0xE0 && len(b) > 1 && b[1]^0x80 < 0x40 {
		r = rune(x&0x1F)<<6 | rune(b[1]^0x80) // x >= 0xC2: not overlong
	} else {
		r, w = utf8.DecodeRune(b)
	}
	if r < 1<<16 && a.pages != nil { // classOf's page lookup, inlined
		p := a.pages[r>>pageBits]
		if p&pageMixed == 0 {
			return p, w
		}
		return a.blocks[int(p&^pageMixed)<<pageBits|int(r&(1<<pageBits-1))], w
	}
	return a.classOf(r), w
}

// classOf returns the class of r, a rune above ASCII: from the page
// table in the BMP when there is one, else by binary search.
func (a *automaton) classOf(r rune) uint16 {
	if r < 1<<16 && a.pages != nil {
		p := a.pages[r>>pageBits]
		if p&pageMixed == 0 {
			return p
		}
		return a.blocks[int(p&^pageMixed)<<pageBits|int(r&(1<<pageBits-1))]
	}
	i, j := 0, len(a.lo)
	for j-i > 1 {
		h := int(uint(i+j) >> 1)
		if a.lo[h] <= r {
			i = h
		} else {
			j = h
		}
	}
	return a.cls[i]
}

// The page table: the BMP in pages of 64 runes (a 2-byte UTF-8 sequence's
// first byte, or a 3-byte one's first two, name one page). A page of one
// class holds it; a mixed page (pageMixed set) holds the index of its
// block of 64 classes. It is built only when the class runs above ASCII
// are more than maxRunsSearched: its index is 2 KiB, and each block 128
// bytes (at most 1024 blocks).
const (
	pageBits        = 6
	pageMixed       = 0x8000
	maxRunsSearched = 16
)

// buildPages fills a's page table from its class runs.
func (a *automaton) buildPages() {
	if len(a.lo) <= maxRunsSearched {
		return
	}
	a.pages = make([]uint16, 1<<(16-pageBits))
	j := 0 // the run holding the page's first rune
	for pg := range a.pages {
		first, end := rune(pg)<<pageBits, rune(pg+1)<<pageBits
		if end <= utf8.RuneSelf {
			continue // ASCII: the table decides
		}
		first = max(first, utf8.RuneSelf)
		for j+1 < len(a.lo) && a.lo[j+1] <= first {
			j++
		}
		if j+1 == len(a.lo) || a.lo[j+1] >= end {
			a.pages[pg] = a.cls[j]
			continue
		}
		a.pages[pg] = pageMixed | uint16(len(a.blocks)>>pageBits)
		for r := rune(pg) << pageBits; r < end; r++ {
			k := j
			for k+1 < len(a.lo) && a.lo[k+1] <= r {
				k++
			}
			a.blocks = append(a.blocks, a.cls[k])
		}
	}
}

// tooManyStatesError is buildAutomaton's error when the automaton would
// exceed its bound.
type tooManyStatesError struct {
	states, classes int
	work            bool // maxBuildWork was reached first
}

func (e *tooManyStatesError) Error() string {
	if e.work {
		return fmt.Sprintf("needs more than %d automaton states of too many threads each to build (%d rune classes)", e.states, e.classes)
	}
	return fmt.Sprintf("needs more than %d automaton states (%d rune classes, at most %d transitions)", e.states, e.classes, MaxPatternTransitions)
}

// maxBuildWork bounds the work of building one automaton, counted in
// instructions visited and threads stepped: states times threads per
// state, which the transition bound alone leaves up to about 10^8. The
// costliest patterns within the other bounds (.{0,1000}[^a], .{0,1000}\b)
// take about 3 million, 50 ms; the bound stops a build near a quarter of a second.
const maxBuildWork = 16_000_000

// The kind of a rune, as the empty-width assertions see it, and the
// context a state keeps of the rune before it.
const (
	runeOther = iota
	runeNewline
	runeWord
	ctxBegin // no rune before: the start of the input
)

// kindRune is a rune of each kind, and -1 for ctxBegin (what
// syntax.EmptyOpContext takes for "no rune").
var kindRune = [4]rune{' ', '\n', 'a', -1}

func runeKind(r rune) uint8 {
	switch {
	case r == '\n':
		return runeNewline
	case r < utf8.RuneSelf && syntax.IsWordChar(r):
		return runeWord
	}
	return runeOther
}

// instRanges returns the runes a rune instruction matches, as inclusive
// pairs (lo, hi), as syntax.Inst.MatchRune decides: a one-rune InstRune
// with FoldCase matches the rune's whole simple-folding orbit (K k and
// U+212A KELVIN SIGN); a class's ranges are already folded by the parser.
func instRanges(in *syntax.Inst) []rune {
	switch in.Op {
	case syntax.InstRune1:
		return []rune{in.Rune[0], in.Rune[0]}
	case syntax.InstRuneAny:
		return []rune{0, unicode.MaxRune}
	case syntax.InstRuneAnyNotNL:
		return []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}
	}
	if len(in.Rune) != 1 {
		return in.Rune
	}
	r0 := in.Rune[0]
	out := []rune{r0, r0}
	if syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
		for r := unicode.SimpleFold(r0); r != r0; r = unicode.SimpleFold(r) {
			out = append(out, r, r)
		}
	}
	return out
}

func isRuneInst(op syntax.InstOp) bool {
	return op == syntax.InstRune || op == syntax.InstRune1 || op == syntax.InstRuneAny || op == syntax.InstRuneAnyNotNL
}

// builder holds the work of buildAutomaton.
type builder struct {
	prog     *syntax.Prog
	group    []int32    // per instruction: its rune set's index in member, -1 for others
	member   [][]uint64 // per rune set: a bit per class it matches
	kind     []uint8    // per class: the kind of its runes
	ncls     int
	ctxMask  [4]uint8 // the context a state keeps, per rune kind (see canonical contexts in build)
	stamp    []uint32 // per instruction: the generation that last visited it
	gen      uint32
	stack    []uint32
	work     int      // instructions visited and threads stepped so far
	maxWork  int      // the bound on work (maxBuildWork)
	set      []uint64 // a thread set being built: a bit per instruction
	end      []uint32 // the closure at the end of the input
	states   []dstate
	index    map[string]uint16
	maxState int
	key      []byte
}

// dstate is a state while the automaton is built.
type dstate struct {
	ctx uint8
	pcs []uint32 // ascending: the threads waiting for a rune
}

// buildAutomaton compiles prog into an automaton of at most
// MaxPatternTransitions transitions.
func buildAutomaton(prog *syntax.Prog) (*automaton, error) {
	return buildAutomatonWithin(prog, maxBuildWork)
}

// buildAutomatonWithin is buildAutomaton with maxWork for maxBuildWork.
func buildAutomatonWithin(prog *syntax.Prog, maxWork int) (*automaton, error) {
	b := &builder{prog: prog, index: make(map[string]uint16), maxWork: maxWork}
	a := &automaton{}
	b.classes(a)
	a.ncls = b.ncls
	if a.ncls > MaxPatternTransitions/4 {
		return nil, &tooManyStatesError{states: 1, classes: a.ncls}
	}
	for 1<<a.shift < a.ncls {
		a.shift++
	}
	b.maxState = min(MaxPatternTransitions>>a.shift, stateDead-1)

	// Keep only the context the program's assertions can tell apart, so a
	// program without them has one state per thread set.
	var used syntax.EmptyOp
	for i := range prog.Inst {
		if prog.Inst[i].Op == syntax.InstEmptyWidth {
			used |= syntax.EmptyOp(prog.Inst[i].Arg)
		}
	}
	b.ctxMask = [4]uint8{runeOther, runeNewline, runeWord, ctxBegin}
	if used&(syntax.EmptyWordBoundary|syntax.EmptyNoWordBoundary) == 0 {
		b.ctxMask[runeWord] = runeOther
	}
	if used&syntax.EmptyBeginLine == 0 {
		b.ctxMask[runeNewline] = runeOther
	}
	switch {
	case used&(syntax.EmptyBeginText|syntax.EmptyBeginLine) == 0:
		b.ctxMask[ctxBegin] = runeOther // \b sees no rune as a non-word rune
	case used&syntax.EmptyBeginText == 0:
		b.ctxMask[ctxBegin] = runeNewline // only (?m)^ looks: it holds after '\n' alike
	}

	b.stamp = make([]uint32, len(prog.Inst))
	b.set = make([]uint64, (len(prog.Inst)+63)/64)
	start, _ := b.state(b.ctxMask[ctxBegin])
	var closures, bufs [3][]uint32
	var matched [3]bool
	var ops [3]syntax.EmptyOp
	width := 1 << a.shift
	for s := 0; s < len(b.states); s++ {
		st := b.states[s]
		// The closure before a rune of each kind, computed once per
		// distinct set of assertions that hold.
		for k := range closures {
			ops[k] = syntax.EmptyOpContext(kindRune[st.ctx], kindRune[k]) & used
			if j := slices.Index(ops[:k], ops[k]); j >= 0 {
				closures[k], matched[k] = closures[j], matched[j]
				continue
			}
			bufs[k], matched[k] = b.closure(bufs[k][:0], st.pcs, ops[k])
			closures[k] = bufs[k]
		}
		end := syntax.EmptyOpContext(kindRune[st.ctx], -1) & used
		if j := slices.Index(ops[:], end); j >= 0 {
			a.final = append(a.final, matched[j])
		} else {
			var m bool
			b.end, m = b.closure(b.end[:0], st.pcs, end)
			a.final = append(a.final, m)
		}
		for c := range width {
			if c >= b.ncls {
				a.trans = append(a.trans, stateDead) // never read
				continue
			}
			k := b.kind[c]
			if matched[k] {
				a.trans = append(a.trans, stateMatch)
				continue
			}
			b.step(closures[k], c)
			t, err := b.state(b.ctxMask[k])
			if err != nil {
				return nil, err
			}
			a.trans = append(a.trans, t)
		}
	}
	a.start = start
	a.buildPages()
	a.fold()
	a.compact()
	return a, nil
}

// classes cuts the runes into classes, fills the class lookup of a, and
// records which classes each rune instruction matches.
func (b *builder) classes(a *automaton) {
	prog := b.prog
	// Rune instructions with the same rune set share it.
	b.group = make([]int32, len(prog.Inst))
	var sets [][]rune
	seen := make(map[string]int32)
	var key []byte
	for i := range prog.Inst {
		b.group[i] = -1
		in := &prog.Inst[i]
		if !isRuneInst(in.Op) {
			continue
		}
		rs := instRanges(in)
		key = key[:0]
		for _, r := range rs {
			key = binary.LittleEndian.AppendUint32(key, uint32(r))
		}
		g, ok := seen[string(key)]
		if !ok {
			g = int32(len(sets))
			seen[string(key)] = g
			sets = append(sets, rs)
		}
		b.group[i] = g
	}

	// The boundaries: every range's ends, the kinds' ends, and ASCII's.
	bounds := []rune{0, '\n', '\n' + 1, '0', '9' + 1, 'A', 'Z' + 1, '_', '_' + 1, 'a', 'z' + 1, utf8.RuneSelf, unicode.MaxRune + 1}
	for _, rs := range sets {
		for i := 0; i+1 < len(rs); i += 2 {
			bounds = append(bounds, rs[i], rs[i+1]+1)
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	nint := len(bounds) - 1 // interval i is bounds[i] to bounds[i+1]-1
	at := func(r rune) int { return sort.Search(len(bounds), func(i int) bool { return bounds[i] >= r }) }

	// Refine the partition by kind, then by each rune set in turn.
	cls := make([]int32, nint)
	ncls := 3
	for i := range cls {
		cls[i] = int32(runeKind(bounds[i]))
	}
	in := make([]bool, nint)
	var remap []int32
	for _, rs := range sets {
		clear(in)
		for i := 0; i+1 < len(rs); i += 2 {
			for j, end := at(rs[i]), at(rs[i+1]+1); j < end; j++ {
				in[j] = true
			}
		}
		remap = slices.Grow(remap[:0], 2*ncls)[:2*ncls]
		for i := range remap {
			remap[i] = -1
		}
		n := 0
		for j := range cls {
			k := 2 * cls[j]
			if in[j] {
				k++
			}
			if remap[k] < 0 {
				remap[k] = int32(n)
				n++
			}
			cls[j] = remap[k]
		}
		ncls = n
	}
	b.ncls = ncls
	b.kind = make([]uint8, ncls)
	for j := range cls {
		b.kind[cls[j]] = runeKind(bounds[j])
	}
	words := (ncls + 63) / 64
	b.member = make([][]uint64, len(sets))
	for g, rs := range sets {
		m := make([]uint64, words)
		for i := 0; i+1 < len(rs); i += 2 {
			for j, end := at(rs[i]), at(rs[i+1]+1); j < end; j++ {
				m[cls[j]/64] |= 1 << (cls[j] % 64)
			}
		}
		b.member[g] = m
	}

	// The lookup: a table for ASCII, runs of one class above.
	for j := 0; bounds[j] < utf8.RuneSelf; j++ {
		for r := bounds[j]; r < bounds[j+1]; r++ {
			a.byteClass[r] = uint16(cls[j])
		}
	}

	for j := at(utf8.RuneSelf); j < nint; j++ {
		c := uint16(cls[j])
		if len(a.cls) > 0 && a.cls[len(a.cls)-1] == c {
			continue
		}
		a.lo = append(a.lo, bounds[j])
		a.cls = append(a.cls, c)
	}
	// Bytes that never start a rune read as U+FFFD: 0x80-0xC1
	// (continuation bytes, overlong leads) and 0xF5-0xFF.
	fffd := a.classOf(utf8.RuneError)
	for x := utf8.RuneSelf; x < 256; x++ {
		a.byteClass[x] = classDecode
		if x < 0xC2 || x > 0xF4 {
			a.byteClass[x] = fffd
		}
	}
}

// closure appends to out the rune instructions reachable from pcs and the
// start instruction without reading a rune, following only the assertions
// op holds, and reports whether Match is reachable.
func (b *builder) closure(out, pcs []uint32, op syntax.EmptyOp) ([]uint32, bool) {
	b.gen++
	if b.gen == 0 {
		clear(b.stamp)
		b.gen = 1
	}
	matched := false
	stack := append(b.stack[:0], uint32(b.prog.Start))
	stack = append(stack, pcs...)
	b.work += len(stack)
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b.stamp[pc] == b.gen {
			continue
		}
		b.stamp[pc] = b.gen
		in := &b.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Arg, in.Out)
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&^op == 0 {
				stack = append(stack, in.Out)
			}
		case syntax.InstMatch:
			matched = true
		case syntax.InstFail:
		default:
			out = append(out, pc)
		}
	}
	b.stack = stack
	return out, matched
}

// step fills b.set with the threads that the rune instructions in
// closure pass a rune of class c to.
func (b *builder) step(closure []uint32, c int) {
	b.work += len(closure) + len(b.set)
	clear(b.set)
	w, bit := c/64, uint64(1)<<(c%64)
	for _, pc := range closure {
		if b.member[b.group[pc]][w]&bit != 0 {
			out := b.prog.Inst[pc].Out
			b.set[out/64] |= 1 << (out % 64)
		}
	}
}

// state returns the number of the state (ctx, b.set), adding it if new.
func (b *builder) state(ctx uint8) (uint16, error) {
	b.key = append(b.key[:0], ctx)
	for _, w := range b.set {
		b.key = binary.LittleEndian.AppendUint64(b.key, w)
	}
	if s, ok := b.index[string(b.key)]; ok {
		return s, nil
	}
	if len(b.states) >= b.maxState {
		return 0, &tooManyStatesError{states: b.maxState, classes: b.ncls}
	}
	if b.work > b.maxWork {
		return 0, &tooManyStatesError{states: len(b.states), classes: b.ncls, work: true}
	}
	s := uint16(len(b.states))
	b.index[string(b.key)] = s
	var pcs []uint32
	for i, w := range b.set {
		for w != 0 {
			pcs = append(pcs, uint32(i*64+bits.TrailingZeros64(w)))
			w &= w - 1
		}
	}
	b.states = append(b.states, dstate{ctx: ctx, pcs: pcs})
	return s, nil
}

// fold sends every transition into a state from which no match can follow
// to stateDead, and into a state from which every input matches to
// stateMatch, so a search stops as soon as its answer is known.
func (a *automaton) fold() {
	n := len(a.final)
	// The transitions reversed, as lists of predecessors: pred[from[t]:from[t+1]].
	from := make([]int32, n+1)
	for _, t := range a.trans {
		if t < stateDead {
			from[t+1]++
		}
	}
	for i := range n {
		from[i+1] += from[i]
	}
	pred := make([]uint16, from[n])
	fill := slices.Clone(from[:n])
	for i, t := range a.trans {
		if t < stateDead {
			pred[fill[t]] = uint16(i >> a.shift)
			fill[t]++
		}
	}
	// live: a match can follow; found backwards from the states that match
	// at the end or have a transition to stateMatch.
	live := make([]bool, n)
	var work []uint16
	for s := range n {
		if a.final[s] || slices.Contains(a.trans[s<<a.shift:(s+1)<<a.shift], stateMatch) {
			live[s] = true
			work = append(work, uint16(s))
		}
	}
	for len(work) > 0 {
		t := work[len(work)-1]
		work = work[:len(work)-1]
		for _, s := range pred[from[t]:from[t+1]] {
			if !live[s] {
				live[s] = true
				work = append(work, s)
			}
		}
	}
	// sure: every input matches. A state is not sure when it does not
	// match at the end or has a transition to a state that is not sure.
	sure := slices.Clone(a.final)
	for s := range n {
		if !sure[s] {
			work = append(work, uint16(s))
		}
	}
	for len(work) > 0 {
		t := work[len(work)-1]
		work = work[:len(work)-1]
		for _, s := range pred[from[t]:from[t+1]] {
			if sure[s] {
				sure[s] = false
				work = append(work, s)
			}
		}
	}
	to := func(t uint16) uint16 {
		switch {
		case t >= stateDead:
			return t
		case !live[t]:
			return stateDead
		case sure[t]:
			return stateMatch
		}
		return t
	}
	for i, t := range a.trans {
		a.trans[i] = to(t)
	}
	a.start = to(a.start)
}

// compact drops the states a search can no longer reach once fold has
// sent transitions to stateDead and stateMatch, numbers the others in the
// order a search meets them, and turns each number into its row's offset
// (the offsets stay below stateDead: a row is at least 4 wide, and the
// table at most MaxPatternTransitions long).
func (a *automaton) compact() {
	if a.start >= stateDead {
		a.trans, a.final = nil, nil
		return
	}
	width := 1 << a.shift
	num := make([]int32, len(a.final))
	for i := range num {
		num[i] = -1
	}
	order := []uint16{a.start}
	num[a.start] = 0
	for i := 0; i < len(order); i++ {
		for _, t := range a.trans[int(order[i])*width : int(order[i]+1)*width] {
			if t < stateDead && num[t] < 0 {
				num[t] = int32(len(order))
				order = append(order, t)
			}
		}
	}
	trans := make([]uint16, 0, len(order)*width)
	final := make([]bool, 0, len(order))
	for _, s := range order {
		for _, t := range a.trans[int(s)*width : int(s+1)*width] {
			if t < stateDead {
				t = uint16(num[t] << a.shift)
			}
			trans = append(trans, t)
		}
		final = append(final, a.final[s])
	}
	a.trans, a.final, a.start = trans, final, 0
}
