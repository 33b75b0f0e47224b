package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/faults"
)

// conn is one control WebSocket. Its goroutines: the reader (the handler's
// own goroutine: it reads a request, runs it and queues the reply, so one
// connection's requests run in order), the writer (the only one writing
// data frames, and the pinger), and one forwarder per subscription.
type conn struct {
	h   *Handler
	ws  *websocket.Conn
	log *slog.Logger

	out  chan []byte   // frames for the writer
	done chan struct{} // closed when the connection ends
	once sync.Once

	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc

	subsMu  sync.Mutex
	subs    map[uint64]*serverSub
	nextSub uint64
}

// serverSub is one subscription on one connection.
type serverSub struct {
	id     uint64
	fs     *faults.Subscription
	stop   chan struct{} // closed by unsubscribe
	exited chan struct{} // closed when the forwarder returns
}

func newConn(h *Handler, ws *websocket.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		h:      h,
		ws:     ws,
		log:    h.log.With("remote", ws.RemoteAddr().String()),
		out:    make(chan []byte, 64),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		subs:   make(map[uint64]*serverSub),
	}
}

// close ends the connection: the reader and writer fail and return. It is
// safe to call more than once and from any goroutine.
func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.cancel()
		_ = c.ws.Close()
	})
}

// serve reads requests until the connection ends, then releases its
// subscriptions and waits for the writer.
func (c *conn) serve() {
	h := c.h
	writerDone := make(chan struct{})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(writerDone)
		c.write()
	}()

	alive := func() { _ = c.ws.SetReadDeadline(time.Now().Add(h.opts.PongWait)) }
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		data, err := c.readMessage(h.opts.MaxFrameBytes)
		if err != nil {
			if errors.Is(err, errOversized) {
				c.log.Info("control client sent an oversized message; closed with 1009", "limit", h.opts.MaxFrameBytes)
			} else if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				c.log.Debug("control read ended", "err", err)
			}
			break
		}
		alive()
		rep, after := h.handle(c.ctx, c, data, "")
		b, err := json.Marshal(rep)
		if err != nil { // cannot happen: every result type marshals
			b, _ = json.Marshal(Reply{ID: rep.ID, Error: &Error{Code: CodeInternal, Message: err.Error()}})
		}
		if !c.send(b, nil) {
			break
		}
		if after != nil {
			after()
		}
	}
	c.close()
	c.subsMu.Lock()
	for id, s := range c.subs {
		close(s.stop)
		s.fs.Close()
		delete(c.subs, id)
		c.h.subs.Add(-1)
	}
	c.subsMu.Unlock()
	<-writerDone
}

// send queues a frame for the writer. It reports false when the connection
// ended (or stop closed) first.
func (c *conn) send(b []byte, stop <-chan struct{}) bool {
	select {
	case c.out <- b:
		return true
	case <-c.done:
		return false
	case <-stop:
		return false
	}
}

// write writes queued frames and pings until the connection ends. A write
// that takes longer than PongWait means a dead peer: the connection ends.
func (c *conn) write() {
	opts := &c.h.opts
	ping := time.NewTicker(opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(opts.PongWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.log.Debug("control write failed", "err", err)
				c.close()
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(opts.PongWait)); err != nil {
				c.close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// admit counts one more subscription on c, or says which bound it would
// pass. Every admitted subscription is then registered by subscribe, and
// released when it ends.
func (c *conn) admit() *Error {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	if len(c.subs) >= MaxConnSubscriptions {
		return &Error{Code: CodeLimitExceeded, Message: fmt.Sprintf("this connection has %d subscriptions, the most it may have: unsubscribe first", MaxConnSubscriptions)}
	}
	if c.h.subs.Add(1) > MaxSubscriptions {
		c.h.subs.Add(-1)
		return &Error{Code: CodeLimitExceeded, Message: fmt.Sprintf("the server has %d subscriptions, the most it takes: try again once others end", MaxSubscriptions)}
	}
	return nil
}

// subscribe registers a subscription and returns it with the function that
// starts its forwarder, to be called once the reply is queued.
func (c *conn) subscribe(fs *faults.Subscription, replay []faults.Entry) (*serverSub, func()) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.nextSub++
	s := &serverSub{id: c.nextSub, fs: fs, stop: make(chan struct{}), exited: make(chan struct{})}
	c.subs[s.id] = s
	var skip uint64 // live events already replayed
	if n := len(replay); n > 0 {
		skip = replay[n-1].Seq
	}
	start := func() {
		c.h.wg.Add(1)
		go func() {
			defer c.h.wg.Done()
			defer close(s.exited)
			c.forward(s, replay, skip)
		}()
	}
	return s, start
}

// unsubscribe stops subscription id and waits until its forwarder has
// returned, so no event of it follows the reply.
func (c *conn) unsubscribe(id uint64) bool {
	c.subsMu.Lock()
	s, ok := c.subs[id]
	delete(c.subs, id)
	c.subsMu.Unlock()
	if !ok {
		return false
	}
	c.h.subs.Add(-1)
	close(s.stop)
	s.fs.Close()
	<-s.exited
	return true
}

// forward sends the replayed entries, then live events, in seq order,
// with a lost event whenever the engine dropped some.
func (c *conn) forward(s *serverSub, replay []faults.Entry, skip uint64) {
	for i := range replay {
		if !c.sendEvent(s, entryEvent(&replay[i])) {
			return
		}
	}
	var reported uint64
	reportLost := func() bool {
		n := s.fs.Lost()
		if n == reported {
			return true
		}
		lost := n - reported
		reported = n
		return c.sendEvent(s, Event{Event: EventLost, Count: lost})
	}
	tick := time.NewTicker(lostCheckInterval)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-s.fs.C:
			if !ok {
				return
			}
			if e.Seq <= skip {
				continue
			}
			if hook := c.h.forwardHook; hook != nil {
				hook()
			}
			if !reportLost() || !c.sendEvent(s, entryEvent(&e)) {
				return
			}
		case <-tick.C:
			if !reportLost() {
				return
			}
		case <-s.stop:
			return
		case <-c.done:
			return
		}
	}
}

// entryEvent is the event of a journal entry: a decision, or a step.
func entryEvent(e *faults.Entry) Event {
	if e.Step != nil {
		return Event{Event: EventStep, Entry: e}
	}
	return Event{Event: EventDecision, Entry: e}
}

func (c *conn) sendEvent(s *serverSub, ev Event) bool {
	ev.Subscription = s.id
	b, err := json.Marshal(ev)
	if err != nil {
		return true // cannot happen; skip the event
	}
	return c.send(b, s.stop)
}
