package webhook

// Spans returns copies of the webhook's newest records (up to
// Options.History), oldest first, like Records but without their bodies:
// what a timeline or a latency histogram needs, without copying up to
// 64 KiB per request. An unknown name has none.
func (h *Hub) Spans(name string) []Record { return h.copyRecords(name, false) }

// copyRecords returns copies of the webhook's newest records, oldest
// first, with their bodies or without.
func (h *Hub) copyRecords(name string, bodies bool) []Record {
	hk := h.hooks[name]
	if hk == nil {
		return nil
	}
	hk.mu.RLock()
	defer hk.mu.RUnlock()
	n := hk.records.len()
	out := make([]Record, n)
	for i := range n {
		if bodies {
			out[n-1-i] = hk.records.at(i).clone()
		} else {
			out[n-1-i] = hk.records.at(i).Record
			out[n-1-i].Body = nil
		}
	}
	return out
}
