package control_test

import (
	"errors"
	"testing"

	"github.com/stunfault/stunfault/server/control"
)

// Subscriptions are bounded per connection and in total: beyond, subscribe
// fails with limit_exceeded, and an ended subscription frees its place.
func TestSubscriptionBounds(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	subscribe := func(c *control.Client) (*control.Subscription, error) {
		return c.Subscribe(ctx(t), control.SubscribeRequest{})
	}

	// Per connection.
	first := ts.dial(t, nil)
	var subs []*control.Subscription
	for i := range control.MaxConnSubscriptions {
		s, err := subscribe(first)
		if err != nil {
			t.Fatalf("subscription %d of %d: %v", i+1, control.MaxConnSubscriptions, err)
		}
		subs = append(subs, s)
	}
	if _, err := subscribe(first); codeOf(t, err) != control.CodeLimitExceeded {
		t.Fatalf("subscription %d on one connection: got %v, want %s", control.MaxConnSubscriptions+1, err, control.CodeLimitExceeded)
	}
	if err := subs[0].Unsubscribe(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := subscribe(first); err != nil {
		t.Fatalf("after an unsubscribe: %v, want a subscription", err)
	}

	// In total: first holds MaxConnSubscriptions.
	var last *control.Client
	for n := control.MaxConnSubscriptions; n < control.MaxSubscriptions; {
		last = ts.dial(t, nil)
		for i := 0; i < control.MaxConnSubscriptions && n < control.MaxSubscriptions; i++ {
			if _, err := subscribe(last); err != nil {
				t.Fatalf("subscription %d of %d in total: %v", n+1, control.MaxSubscriptions, err)
			}
			n++
		}
	}
	extra := ts.dial(t, nil)
	if _, err := subscribe(extra); codeOf(t, err) != control.CodeLimitExceeded {
		t.Fatalf("subscription %d in total: got %v, want %s", control.MaxSubscriptions+1, err, control.CodeLimitExceeded)
	}
	// A connection that goes away releases its subscriptions; the server
	// notices its end a moment later, so each attempt is one more reply.
	_ = first.Close()
	for try := 0; ; try++ {
		_, err := subscribe(extra)
		if err == nil {
			break
		}
		if codeOf(t, err) != control.CodeLimitExceeded || try == 1000 {
			t.Fatalf("after a connection closed: %v, want a subscription", err)
		}
	}
}

// A buffer above MaxEventBuffer is refused, naming the field.
func TestSubscriptionBufferBound(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	s, err := c.Subscribe(ctx(t), control.SubscribeRequest{Buffer: control.MaxEventBuffer})
	if err != nil {
		t.Fatalf("buffer %d: %v", control.MaxEventBuffer, err)
	}
	_ = s.Close()
	_, err = c.Subscribe(ctx(t), control.SubscribeRequest{Buffer: control.MaxEventBuffer + 1})
	var ce *control.Error
	if codeOf(t, err) != control.CodeBadRequest || !errors.As(err, &ce) || ce.Field != "buffer" {
		t.Errorf("buffer %d: got %v, want bad_request on buffer", control.MaxEventBuffer+1, err)
	}
}
