package faults

// Selects returns a function that reports whether q selects an entry, as
// Journal.Query would (SinceSeq and Limit aside). It lets records that are
// not in the journal, such as the server's trace of every message, be
// filtered the way journal queries are. q is compiled once.
func (q Query) Selects() func(*Entry) bool {
	q.SinceSeq, q.Limit = 0, 0
	f := newQueryFilter(q)
	return f.match
}
