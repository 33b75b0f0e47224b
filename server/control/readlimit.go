package control

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// errOversized ends a connection whose client sent a message over the frame
// limit.
var errOversized = errors.New("control: message over the frame limit")

// Bounds on what an oversized message costs before its connection closes.
const (
	// oversizedDrain is the most of an oversized message (and of what
	// follows it) read and thrown away after the close frame, so that the
	// client reads the close instead of a connection reset: the kernel
	// resets a connection closed with unread data.
	oversizedDrain = 64 << 20
	// oversizedWait bounds the time spent draining.
	oversizedWait = time.Second
)

// readMessage reads the next message, of at most limit bytes. A longer one
// is not read into memory: the client gets a close frame 1009 (message too
// big) whose reason names the limit, what it still sends is drained for a
// bounded time, and errOversized is returned.
func (c *conn) readMessage(limit int64) ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) <= limit {
		return data, nil
	}
	reason := fmt.Sprintf("message over %d bytes, the control socket's frame limit", limit)
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, reason), time.Now().Add(oversizedWait))
	_ = c.ws.SetReadDeadline(time.Now().Add(oversizedWait))
	n, _ := io.CopyN(io.Discard, r, oversizedDrain)
	for n < oversizedDrain { // until the client's close, or the deadline
		_, next, err := c.ws.NextReader()
		if err != nil {
			break
		}
		m, _ := io.CopyN(io.Discard, next, oversizedDrain-n)
		n += m
	}
	return nil, errOversized
}
