package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when the story leaves a goroutine behind: the
// server, the peer connections and the webhook calls must all be released.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The story's steps each end as the issue describes: the simplified payload
// works, the ticket payload, the injected header, N concurrent calls and the
// blocking ticket call each get the softphone's Binding a 403 (no srflx
// candidate, relay still there), fewer calls work, and the async webhook is
// the fix.
func TestScreenpopStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	steps, err := run(ctx, &out, options{config: defaultConfig, configName: "screenpop.toml"})
	t.Logf("transcript:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	const nat = "203.0.113.7:40000"
	want := []struct {
		prefix   string // of the step's name
		scenario string
		mode     string
		held     int
		works    bool   // srflx present, no 403
		rule     string // the only rule that fires
	}{
		{"1 ", "payload", "sync", 1, true, "nat"},
		{"2 ", "payload", "sync", 1, false, "payload-403"},
		{"3 ", "header", "sync", 1, false, "header-403"},
		{"4a ", "load", "sync", 20, false, "load-403"},
		{"4b ", "load", "sync", 5, true, "nat"},
		{"5a ", "blocking", "sync", 1, false, "blocking-403"},
		{"5b ", "blocking", "async", 0, true, "nat"},
	}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i, w := range want {
		st := steps[i]
		t.Run(st.Name, func(t *testing.T) {
			if !strings.HasPrefix(st.Name, w.prefix) || st.Scenario != w.scenario || st.Mode != w.mode {
				t.Errorf("step %q scenario %s mode %s, want %q... scenario %s mode %s",
					st.Name, st.Scenario, st.Mode, w.prefix, w.scenario, w.mode)
			}
			if st.Held != w.held {
				t.Errorf("held open while gathering: got %d, want %d", st.Held, w.held)
			}
			if st.Relay == 0 {
				t.Error("no relay candidate: Allocate should work in every step")
			}
			if st.Host == 0 {
				t.Error("no host candidate")
			}
			if !slices.Equal(st.Rules, []string{w.rule}) {
				t.Errorf("rules fired: got %v, want [%s]", st.Rules, w.rule)
			}
			if w.works {
				if len(st.Srflx) == 0 || st.Forbidden != 0 {
					t.Errorf("got srflx %v and %d 403s, want a srflx candidate and no 403", st.Srflx, st.Forbidden)
				}
				for _, a := range st.Srflx {
					if a != nat {
						t.Errorf("srflx candidate %s, want the simulated NAT's %s", a, nat)
					}
				}
			} else if len(st.Srflx) != 0 || st.Forbidden == 0 {
				t.Errorf("got srflx %v and %d 403s, want no srflx candidate and a 403", st.Srflx, st.Forbidden)
			}
		})
	}
	// The async step's call is answered at once and its work stays pending.
	if last := steps[len(steps)-1]; last.Pending != 1 {
		t.Errorf("async step: pending %d, want 1", last.Pending)
	}

	checkTranscript(t, out.String())
}

// checkTranscript checks that the transcript reports what really happened
// in each step (the journal's firings, the candidates, the webhook's
// answers and the sizes it measured), not only the text the program always
// prints.
func checkTranscript(t *testing.T, transcript string) {
	t.Helper()
	sections := map[string]string{} // by step number: "2", "5b"
	for _, sec := range strings.Split(transcript, "\n== ")[1:] {
		num, _, _ := strings.Cut(sec, " ")
		sections[num] = sec
	}
	stun := regexp.MustCompile(`on stun:(\S+) and turn:`).FindStringSubmatch(transcript)
	if stun == nil {
		t.Fatalf("transcript does not say the server's STUN address")
	}
	refused := `outcome:   Binding refused: no srflx candidate, [1-9]\d* relay candidate\(s\) \(Allocate is not Binding\), [1-9]\d* 403\(s\)`
	works := `outcome:   gathering works: srflx 203\.0\.113\.7:40000, [1-9]\d* relay candidate\(s\), 0 403\(s\)`
	for _, tt := range []struct {
		step string
		want []string // regexps that must match within the step's section
	}{
		{"1", []string{works, `journal:   #\d+ nat: mapped_address on binding success`}},
		// The 403 the softphone got, as the journal recorded it, and the
		// browser note naming this server's real address.
		{"2", []string{refused, `journal:   #\d+ payload-403: error 403 on binding request \(udp, from client 127\.0\.0\.1:\d+\)`,
			`url stun:` + regexp.QuoteMeta(stun[1]) + `\.`}},
		// The header the webhook measured is over the rule's threshold.
		{"3", []string{refused, `journal:   #\d+ header-403: error 403 on binding request`,
			`header (2[1-9]\d\d|[3-9]\d\d\d) bytes \(X-Custom-Attributes: \d+ bytes\)`}},
		{"4a", []string{refused, `held open now 20, pending 20`, `journal:   #\d+ load-403: error 403 on binding request`}},
		{"4b", []string{works, `held open now 5, pending 5`}},
		{"5a", []string{refused, `journal:   #\d+ blocking-403: error 403 on binding request`}},
		// The async webhook answered 202 at once and its work is pending.
		{"5b", []string{works, `async mode; held open now 0, pending 1; answered at once: 202`, `journal:   #\d+ nat: mapped_address`}},
	} {
		sec, ok := sections[tt.step]
		if !ok {
			t.Errorf("transcript has no step %s", tt.step)
			continue
		}
		for _, w := range tt.want {
			if !regexp.MustCompile(w).MatchString(sec) {
				t.Errorf("step %s: transcript lacks %s", tt.step, w)
			}
		}
	}
	if n := strings.Count(transcript, "icecandidateerror with errorCode 3"); n != 1 || !strings.Contains(sections["2"], "errorCode 3") {
		t.Errorf("the browser note is printed %d times, want once, in step 2", n)
	}
}

// A config without the story's scenarios is refused before anything starts.
func TestScreenpopNeedsTheScenarios(t *testing.T) {
	cfg := []byte("[webhooks.servicenow]\nlatency = \"30s\"\n")
	var out bytes.Buffer
	_, err := run(context.Background(), &out, options{config: cfg, configName: "bare.toml"})
	if err == nil || !strings.Contains(err.Error(), "bare.toml: no [scenarios.payload]") {
		t.Errorf("run = %v, want an error naming the missing scenario", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q before failing", out.String())
	}
}
