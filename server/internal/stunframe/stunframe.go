// Package stunframe splits a TCP byte stream into the frames STUN and TURN
// send over it: whole STUN messages (20-byte header plus the length in the
// header) and ChannelData messages (4-byte header plus the data, padded to a
// multiple of 4 on TCP, RFC 8656 §12.5). stunfault decides on whole frames,
// and hands pion only whole frames, so this is the one place that knows
// where one ends.
package stunframe

import (
	"errors"
	"io"

	"github.com/stunfault/stunfault/internal/stunwire"
)

var (
	// ErrIncomplete means b holds the start of a frame but not all of it.
	ErrIncomplete = errors.New("stunframe: incomplete frame")
	// ErrInvalid means b starts with neither a STUN message nor ChannelData;
	// a stream in that state cannot be resynchronised.
	ErrInvalid = errors.New("stunframe: not a STUN message or ChannelData")
)

// MaxFrame is the largest frame: a STUN header and the largest length.
const MaxFrame = stunwire.HeaderSize + 0xFFFF

// Size returns the length of the frame at the start of b: ErrIncomplete when
// b is too short to tell or to hold it, ErrInvalid when b cannot start one.
func Size(b []byte) (int, error) {
	switch kind, n := stunwire.Classify(b); kind {
	case stunwire.Incomplete:
		return 0, ErrIncomplete
	case stunwire.STUN:
		return frame(b, n)
	case stunwire.ChannelData:
		return frame(b, (n+3)&^3)
	}
	return 0, ErrInvalid
}

func frame(b []byte, n int) (int, error) {
	if len(b) < n {
		return 0, ErrIncomplete
	}
	return n, nil
}

// Reader reads whole frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	buf []byte // buf[start:end] holds unconsumed bytes
	beg int
	end int
}

// NewReader returns a Reader of frames from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, 4096)}
}

// Next returns the next whole frame. The slice is valid until the next call.
// It returns ErrInvalid (and keeps returning it) once the stream holds bytes
// that cannot start a frame, io.ErrUnexpectedEOF when the stream ends inside
// a frame, and the reader's error otherwise.
func (fr *Reader) Next() ([]byte, error) {
	for {
		n, err := Size(fr.buf[fr.beg:fr.end])
		if err == nil {
			f := fr.buf[fr.beg : fr.beg+n]
			fr.beg += n
			return f, nil
		}
		if !errors.Is(err, ErrIncomplete) {
			return nil, err
		}
		if err := fr.fill(); err != nil {
			if errors.Is(err, io.EOF) && fr.end > fr.beg {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Buffered returns the bytes read from the stream but not yet returned.
func (fr *Reader) Buffered() []byte { return fr.buf[fr.beg:fr.end] }

// fill reads more bytes, first making room: moving what is left to the
// front, or growing up to MaxFrame.
func (fr *Reader) fill() error {
	if fr.beg > 0 {
		copy(fr.buf, fr.buf[fr.beg:fr.end])
		fr.end -= fr.beg
		fr.beg = 0
	}
	if fr.end == len(fr.buf) {
		if len(fr.buf) >= MaxFrame {
			return ErrInvalid // cannot happen: Size never asks for more
		}
		grown := make([]byte, min(2*len(fr.buf), MaxFrame))
		copy(grown, fr.buf[:fr.end])
		fr.buf = grown
	}
	// Like bufio, tolerate a few empty reads before calling it a broken reader.
	for range maxEmptyReads {
		n, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

const maxEmptyReads = 100
