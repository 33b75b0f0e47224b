package main

import (
	"slices"
	"strings"
)

// question is what -check knows of one level's "Check" question on the
// sheet: the options themselves are written only there (README.md), and a
// test checks that both have the same letters.
type question struct {
	right    string            // the right option's letter
	feedback map[string]string // what -check says for each option's letter
}

// letters returns the option letters, "a, b, c or d".
func (q question) letters() string {
	l := make([]string, 0, len(q.feedback))
	for k := range q.feedback {
		l = append(l, k)
	}
	slices.Sort(l)
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
}

// questions holds, for each level, its question's right letter and the
// feedback on every option: for the right one, why; for a wrong one, which
// observation rules it out.
var questions = map[string]question{
	"level1": {right: "b", feedback: map[string]string{
		"a": "A closed port answers at once: against port 3477 uclient printed `recv: Connection refused`. On 3478 it heard nothing at all.",
		"b": "Every request is dropped: no answer, no ICMP error, so both clients wait until timeout kills them, and the journal counts each copy uclient sent.",
		"c": "A wrong password is answered (401), and turnutils_stunclient sends no password at all; here nothing came back.",
		"d": "A slow answer still arrives; here the journal counted the requests as dropped, and nothing arrived in 5 s.",
	}},
	"level2": {right: "b", feedback: map[string]string{
		"a": "The Binding was answered (the reflexive address), and uclient gave up at once, not after a timeout: the server answers.",
		"b": "Each signed Allocate got 401 as if the password were wrong; uclient treats a 401 as a new challenge, re-signs and retries, 31 times, then gives up.",
		"c": "user/pass is what lab.toml configures; from the client's side a server that rejects right credentials looks exactly like a wrong password.",
		"d": "A server out of relay ports answers 508 (Insufficient Capacity), and uclient would print `error 508`.",
	}},
	"level3": {right: "b", feedback: map[string]string{
		"a": "A refusal is an answer, and turnutils_stunclient prints it; it printed nothing. And the journal dropped Allocates too.",
		"b": "The first copy of each transaction is dropped; a retransmission passes. uclient resends after 0.5 s and succeeds; turnutils_stunclient never resends.",
		"c": "Both clients use the default port 3478; uclient's Allocates on that port got through.",
		"d": "turnutils_stunclient has no timeout of its own; only `timeout 5` stopped it, and no answer had come in 5 s.",
	}},
	"level4": {right: "a", feedback: map[string]string{
		"a": "The server holds each Binding request 1 s before answering: `real 0m1.…s`, where an undisturbed Binding takes a few ms.",
		"b": "turnutils_stunclient never resends: a lost request is never answered (level 3); this one was answered.",
		"c": "It printed the reflexive address: the answer was a success.",
		"d": "The reflexive address is 127.0.0.1, the client's own.",
	}},
	"level5": {right: "b", feedback: map[string]string{
		"a": "The answer is a Binding success: the server works and says where it sees the client.",
		"b": "The server sees the client at 203.0.113.7:40000 while the client is at 127.0.0.1: that is what a NAT in between looks like (here the rule rewrites the address).",
		"c": "The client runs on 127.0.0.1: it sent from there. 203.0.113.7 is where the server sees it come from.",
		"d": "Without a NAT the reflexive address is the client's own address; level 4 showed 127.0.0.1.",
	}},
	"level6": {right: "b", feedback: map[string]string{
		"a": "Binding works (the reflexive address): host and server-reflexive candidates are gathered.",
		"b": "Only the signed Allocate is refused (403), so only the relay candidate is missing: calls work until a network needs TURN.",
		"c": "Binding was answered with the reflexive address: the server-reflexive candidate is there.",
		"d": "uclient printed `error 403 (Forbidden)` and exited 255: a 403 is final, it does not retry.",
	}},
	"level7": {right: "b", feedback: map[string]string{
		"a": "The pop without a ticket was held just as long, and Binding worked meanwhile.",
		"b": "Binding gets 403 only while a call whose body has a ticket_id is held open; before, after, and beside a ticket-free call it works.",
		"c": "The two payloads differ by 20 bytes; send a ticket-free body as long as the ticket's and Binding still works. Size is not it.",
		"d": "One call at a time was enough: each pop ran alone, and only the ticket's made Binding fail.",
	}},
}
