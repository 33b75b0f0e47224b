package faults

// retire closes the retired channel of every rule of old that rules no
// longer holds (a rule kept by SetEnabled or SetScenarios keeps its state,
// and so its channel). The engine's writer lock is held, so each channel is
// closed once: a rule that left the set never comes back.
func retire(old, rules []compiledRule) {
	if len(old) == 0 {
		return
	}
	kept := make(map[*ruleState]bool, len(rules))
	for i := range rules {
		kept[rules[i].st] = true
	}
	for i := range old {
		if c := &old[i]; !kept[c.st] {
			kept[c.st] = true // old may hold a state twice: close once
			close(c.st.retired)
		}
	}
}
