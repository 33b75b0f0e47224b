package control_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

func TestSubscribeLiveInSeqOrder(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	other := rule403("other")
	other.Priority = -1
	other.Match.Sources = []string{"10.0.0.0/8"} // never matches clientAddr
	for _, r := range []faults.Rule{rule403("r"), other} {
		if _, err := ts.b.eng.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Subscribe(ctx(t), control.SubscribeRequest{Filter: faults.Query{Rule: "r", Labels: map[string]string{"test": "control"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Result.Subscription == 0 || s.Result.Replayed != 0 {
		t.Errorf("got result %+v, want a subscription id, nothing replayed", s.Result)
	}
	const n = 200
	for range n {
		ts.decide()
	}
	for i := range n {
		ev := recv(t, s)
		if ev.Event != control.EventDecision || ev.Entry == nil {
			t.Fatalf("event %d: got %+v, want a decision", i, ev)
		}
		if ev.Seq != uint64(i+1) || ev.Rule != "r" || ev.Code != 403 || ev.Method != "binding" || ev.Client != clientAddr {
			t.Fatalf("event %d: got %+v, want seq %d of rule r", i, *ev.Entry, i+1)
		}
	}
	if s.Lost() != 0 {
		t.Errorf("lost %d events, want none", s.Lost())
	}
}

// since_seq replays the journal, then goes live with no gap and no
// duplicate.
func TestSubscribeSinceSeqReplays(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	if _, err := ts.b.eng.Add(rule403("r")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		ts.decide()
	}
	c := ts.dial(t, nil)
	since := uint64(2)
	s, err := c.Subscribe(ctx(t), control.SubscribeRequest{SinceSeq: &since})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Result.Replayed != 3 || s.Result.Truncated || s.Result.LastSeq != 5 {
		t.Errorf("got %+v, want 3 replayed, not truncated, last seq 5", s.Result)
	}
	ts.decide()
	for want := uint64(3); want <= 6; want++ {
		if ev := recv(t, s); ev.Entry == nil || ev.Seq != want {
			t.Fatalf("got %+v, want seq %d", ev, want)
		}
	}

	// After a journal clear the replay says it is incomplete.
	ts.b.eng.Journal().Clear()
	zero := uint64(0)
	s2, err := c.Subscribe(ctx(t), control.SubscribeRequest{SinceSeq: &zero})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.Result.Truncated || s2.Result.Replayed != 0 {
		t.Errorf("after a clear: got %+v, want truncated, nothing replayed", s2.Result)
	}
}

// A subscriber that falls behind gets a lost event counting what it missed,
// and every event it does get is in seq order.
func TestSlowSubscriberGetsLostEvent(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	gate := make(chan struct{})
	ts.h.SetForwardHook(func() { <-gate })
	if _, err := ts.b.eng.Add(rule403("r")); err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t, nil)
	s, err := c.Subscribe(ctx(t), control.SubscribeRequest{Buffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 20
	for range n {
		ts.decide() // the forwarder is held: at most 3 fit
	}
	close(gate)
	var got, lost uint64
	var last uint64
	for got+lost < n {
		ev := recv(t, s)
		switch ev.Event {
		case control.EventLost:
			lost += ev.Count
		case control.EventDecision:
			if ev.Seq <= last {
				t.Fatalf("seq %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			got++
		}
	}
	if lost == 0 || got+lost != n || s.Lost() != lost {
		t.Errorf("got %d events and %d lost (Lost() %d), want some lost, %d in all", got, lost, s.Lost(), n)
	}
}

func TestUnsubscribe(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	if _, err := ts.b.eng.Add(rule403("r")); err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t, nil)
	s, err := c.Subscribe(ctx(t), control.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ts.decide()
	if ev := recv(t, s); ev.Seq != 1 {
		t.Fatalf("got %+v, want seq 1", ev)
	}
	if err := s.Unsubscribe(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ts.decide()
	if _, ok := <-s.C; ok {
		t.Error("got an event after unsubscribe, want C closed")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := c.Call(ctx(t), control.OpUnsubscribe, control.UnsubscribeRequest{Subscription: s.Result.Subscription}, nil); !control.IsNotFound(err) {
		t.Errorf("unsubscribing twice: got %v, want not_found", err)
	}
}

// Close ends every socket: clients see their connection closed, their
// subscriptions close, and later dials are refused.
func TestCloseEndsEverySocket(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	var clients []*control.Client
	for range 3 {
		clients = append(clients, ts.dial(t, nil))
	}
	s, err := clients[0].Subscribe(ctx(t), control.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDial(t, ts)

	ts.h.Close()

	for i, c := range clients {
		select {
		case <-c.Done():
		case <-ctx(t).Done():
			t.Fatalf("client %d still connected", i)
		}
		if _, err := c.Hello(ctx(t)); !errors.Is(err, control.ErrClosed) {
			t.Errorf("client %d: hello after Close: got %v, want ErrClosed", i, err)
		}
	}
	if _, ok := <-s.C; ok {
		t.Error("subscription still open after Close")
	}
	_, _, err = raw.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("raw socket: got %v, want close 1001", err)
	}
	if _, err := control.Dial(ctx(t), ts.wsURL, nil); err == nil {
		t.Error("Dial after Close succeeded")
	}
}

// A peer that answers pings stays; one that does not is dropped after
// PongWait.
func TestKeepalive(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{PingInterval: 10 * time.Millisecond, PongWait: 200 * time.Millisecond})

	alive := rawDial(t, ts)
	pings := make(chan struct{}, 1)
	alive.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	readerDone := make(chan struct{})
	go func() { // pings are answered while reading
		defer close(readerDone)
		for {
			if _, _, err := alive.NextReader(); err != nil {
				return
			}
		}
	}()
	dead := rawDial(t, ts)
	dead.SetPingHandler(func(string) error { return nil }) // never pongs

	// The dead one is dropped.
	_ = dead.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := dead.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("a peer that never pongs was not dropped")
			}
			break
		}
	}

	// The live one was pinged all along and still is, well past PongWait
	// (the dead one took that long to drop): the server kept it.
	for range 3 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatal("the live peer is no longer pinged")
		}
	}
	alive.Close()
	<-readerDone
}
