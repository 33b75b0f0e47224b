package faults_test

import (
	"fmt"
	"net/netip"

	"github.com/pion/stun/v4"
	"github.com/stunfault/stunfault/faults"
)

// The reference scenario's rule: answer the first Binding request with 403
// Forbidden, then let Binding through again.
func ExampleEngine() {
	e := faults.NewEngine(faults.EngineOptions{Seed: 1})
	_, err := e.Add(faults.Rule{
		ID:     "screenpop-403",
		Labels: map[string]string{"test": "retry-logic"},
		Times:  1,
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	client := netip.MustParseAddrPort("127.0.0.1:50000")
	for range 2 {
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		v := e.Decide(&faults.Packet{Data: req.Raw, Dir: faults.In, Transport: faults.UDP, Client: client})
		if v.Kind == faults.Error {
			fmt.Printf("%s by %s: %d %s\n", v.Kind, v.Rule, v.Action.Code, v.Action.Reason)
		} else {
			fmt.Println(v.Kind)
		}
	}
	st, _ := e.Get("screenpop-403")
	fmt.Println("matched", st.Matched, "fired", st.Fired)
	fmt.Println("journal", e.Journal().Count(faults.Query{Labels: map[string]string{"test": "retry-logic"}}))
	// Output:
	// error by screenpop-403: 403 Forbidden
	// pass
	// matched 2 fired 1
	// journal 1
}

// A rule whose match is invalid is rejected with the field that is wrong.
func ExampleEngine_Add_invalid() {
	e := faults.NewEngine(faults.EngineOptions{})
	_, err := e.Add(faults.Rule{
		ID:     "typo",
		Match:  faults.Match{Methods: []string{"bindng"}},
		Action: faults.Action{Type: "drop"},
	})
	for _, fe := range faults.FieldErrors(err) {
		fmt.Println(fe.Field)
	}
	// Output:
	// match.methods[0]
}

func ExampleEngine_Subscribe() {
	e := faults.NewEngine(faults.EngineOptions{})
	if _, err := e.Add(faults.Rule{ID: "lossy", Action: faults.Action{Type: "drop"}}); err != nil {
		fmt.Println(err)
		return
	}
	sub := e.Subscribe(16, faults.Query{Rule: "lossy"})
	defer sub.Close()

	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest))
	e.Decide(&faults.Packet{Data: req.Raw, Client: netip.MustParseAddrPort("127.0.0.1:50000")})

	ev := <-sub.C
	fmt.Println(ev.Seq, ev.Rule, ev.Action, ev.Method, ev.Class, ev.Client)
	// Output:
	// 1 lossy drop allocate request 127.0.0.1:50000
}

func ExamplePacket() {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewUsername("alice:bob"))
	p := &faults.Packet{Data: req.Raw}
	user, _ := p.Username()
	fmt.Println(p.IsSTUN(), p.Method(), p.Class(), string(user), p.HasIntegrity())
	// Output:
	// true binding request alice:bob false
}
