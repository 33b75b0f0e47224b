package faults

import (
	"encoding/json"
	"testing"
)

// compileSeeds are valid rules in their JSON form.
var compileSeeds = []string{
	`{"id":"screenpop-403","priority":10,"match":{"methods":["binding"],"classes":["request"],"webhook":{"name":"servicenow","min_inflight":1,"body":"ticket_id"}},"action":{"type":"error","code":403,"reason":"Forbidden"}}`,
	`{"id":"a","match":{"methods":["allocate"],"authenticated":true,"username":"^user"},"action":{"type":"error","code":403,"integrity":"auto"}}`,
	`{"match":{"sources":["10.0.0.0/8","::1"],"min_size":100,"max_size":600,"transmission":2},"action":{"type":"drop"}}`,
	`{"probability":0.5,"times":3,"after":1,"every":2,"for":"1m","action":{"type":"delay","delay":"150ms","jitter":"20ms"}}`,
	`{"machine":"m","requires_state":"started","sets_state":"x","action":{"type":"duplicate","copies":2}}`,
	`{"match":{"attributes":[{"type":"SOFTWARE","contains":"x","regex":"^a","min_len":1,"max_len":9},{"type":"0x0014","present":false}]},"action":{"type":"corrupt","target":"attribute","count":2}}`,
	`{"match":{"direction":"out","methods":["binding"],"classes":["success"]},"action":{"type":"mapped_address","address":"203.0.113.7:40000"}}`,
	`{"match":{"transports":["tcp"]},"action":{"type":"close"}}`,
	`{"match":{"methods":["channeldata","send"]},"action":{"type":"ratelimit","rate":10,"burst":5,"then":{"type":"truncate","length":8}}}`,
	`{"action":{"type":"error","code":300,"alternate":"127.0.0.1:3479"}}`,
}

func TestCompileSeeds(t *testing.T) {
	for _, s := range compileSeeds {
		var r Rule
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if _, err := compile(r); err != nil {
			t.Errorf("compile(%s) = %v, want a valid rule", s, err)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add([]byte(s))
	}
	pk := newTestPackets(f)
	msgs := []*Packet{pk.bind, pk.bindSigned, pk.alloc, pk.allocSigned, pk.bindSuccessOut, pk.send, pk.cdata, pk.bindTCP}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Rule
		if json.Unmarshal(data, &r) != nil {
			return
		}
		c, err := compile(r)
		if err != nil {
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("compile error without a FieldError: %v", err)
			}
			return
		}
		if c.m.mask == 0 {
			t.Fatal("compiled rule with an empty header mask")
		}
		e := NewEngine(EngineOptions{Signals: &fakeSignals{}})
		if _, err := e.Add(r); err != nil {
			t.Fatalf("compile accepted the rule but Add did not: %v", err)
		}
		for _, p := range msgs {
			e.Decide(fresh(p))
		}
	})
}
