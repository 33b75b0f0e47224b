package faults

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/pion/stun/v4"
)

// keyedRules are "the first Allocate of each client gets 401, its second
// 486", on a machine keyed by key.
func keyedRules(key string) []Rule {
	alloc := Match{Methods: []string{"allocate"}}
	return []Rule{
		{ID: "first", Machine: "m", MachineKey: key, RequiresState: "started", SetsState: "second", Match: alloc, Action: Action{Type: "error", Code: 401}},
		{ID: "second", Machine: "m", MachineKey: key, RequiresState: "second", SetsState: "done", Match: alloc, Action: Action{Type: "error", Code: 486}},
	}
}

// Two clients racing each get their own 401 then 486, then pass.
func TestKeyedMachinePerClient(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	if _, err := e.Replace(keyedRules(MachineKeyClient)); err != nil {
		t.Fatal(err)
	}
	clients := []netip.AddrPort{clientA, clientB, netip.MustParseAddrPort("10.0.0.1:5001")}
	got := make([][]int, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for range 3 {
				p := fresh(pk.alloc)
				p.Client = c
				got[i] = append(got[i], codeOf(e.Decide(p)))
			}
		})
	}
	wg.Wait()
	for i, codes := range got {
		if fmt.Sprint(codes) != "[401 486 0]" {
			t.Errorf("client %s got %v, want [401 486 0]", clients[i], codes)
		}
	}
	st := e.MachineStates()
	if st["m[*]"] != "started" || st["m[udp 10.0.0.1:5000]"] != "done" || st["m[udp 192.168.1.7:6000]"] != "done" {
		t.Errorf("MachineStates() = %v", st)
	}
	// The same address over TCP is another client.
	p := fresh(pk.alloc)
	p.Transport = TCP
	if v := e.Decide(p); v.Rule != "first" {
		t.Errorf("TCP client from the same address: fired %q, want first", v.Rule)
	}
	// SetMachineState moves every key; ResetMachines brings them back.
	if err := e.SetMachineState("m", "second"); err != nil {
		t.Fatal(err)
	}
	if v := e.Decide(fresh(pk.alloc)); v.Rule != "second" {
		t.Errorf("after SetMachineState(second): fired %q, want second", v.Rule)
	}
	e.ResetMachines()
	if v := e.Decide(fresh(pk.alloc)); v.Rule != "first" {
		t.Errorf("after ResetMachines: fired %q, want first", v.Rule)
	}
}

func TestKeyedMachinePerUsername(t *testing.T) {
	e := NewEngine(EngineOptions{})
	if _, err := e.Replace(keyedRules(MachineKeyUsername)); err != nil {
		t.Fatal(err)
	}
	alloc := func(user string, port uint16) *Packet {
		var setters []stun.Setter
		if user != "" {
			setters = append(setters, stun.NewUsername(user))
		}
		return &Packet{Data: buildSTUN(t, stun.NewType(stun.MethodAllocate, stun.ClassRequest), setters...), Dir: In, Transport: UDP,
			Client: netip.AddrPortFrom(clientA.Addr(), port)}
	}
	// alice from two ports shares one state; bob has his own; no USERNAME, none.
	for i, tt := range []struct {
		user string
		port uint16
		want int
	}{{"alice", 1, 401}, {"alice", 2, 486}, {"bob", 3, 401}, {"", 4, 0}, {"alice", 5, 0}, {"bob", 6, 486}} {
		if got := codeOf(e.Decide(alloc(tt.user, tt.port))); got != tt.want {
			t.Errorf("%d: %q got %d, want %d", i, tt.user, got, tt.want)
		}
	}
}

// The table forgets the least recently used key beyond MaxMachineKeys.
func TestKeyedMachineBound(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	if _, err := e.Replace(keyedRules(MachineKeyClient)[:1]); err != nil {
		t.Fatal(err)
	}
	from := func(i int) *Packet {
		p := fresh(pk.alloc)
		p.Client = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 5000)
		return p
	}
	for i := range MaxMachineKeys + 1 {
		if v := e.Decide(from(i)); v.Rule != "first" {
			t.Fatalf("client %d: fired %q, want first", i, v.Rule)
		}
	}
	if n := len(e.MachineStates()); n != MaxMachineKeys+1 { // the keys and m[*]
		t.Errorf("MachineStates() has %d entries, want %d", n, MaxMachineKeys+1)
	}
	if v := e.Decide(from(0)); v.Rule != "first" {
		t.Errorf("the evicted client 0: fired %q, want first (it starts over)", v.Rule)
	}
	if v := e.Decide(from(MaxMachineKeys)); v.Rule != "" {
		t.Errorf("the newest client: fired %q, want nothing (it is done)", v.Rule)
	}
}

func TestMachineKeyValidation(t *testing.T) {
	for _, tt := range []struct {
		r   Rule
		msg string
	}{
		{Rule{Machine: "m", MachineKey: "ip", Action: Action{Type: "drop"}}, `machine_key: unknown key "ip"`},
		{Rule{MachineKey: "client", Action: Action{Type: "drop"}}, "machine_key: only with machine"},
		{Rule{Match: Match{MinUserAllocations: -1}, Action: Action{Type: "drop"}}, "match.min_user_allocations: must not be negative"},
		{Rule{Match: Match{MinAllocations: -2}, Action: Action{Type: "drop"}}, "match.min_allocations: must not be negative"},
	} {
		if err := tt.r.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Validate() = %v, want %q", err, tt.msg)
		}
	}
}

func codeOf(v Verdict) int {
	if v.Action == nil {
		return 0
	}
	return v.Action.Code
}
