package stunframe_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stunfault/stunfault/internal/rfc5769"
	"github.com/stunfault/stunfault/server/internal/stunframe"
)

// channelData returns a ChannelData frame on channel 0x4001 with data and,
// when padded, the TCP padding to 4 bytes.
func channelData(data string, padded bool) []byte {
	b := []byte{0x40, 0x01, 0, byte(len(data))}
	b = append(b, data...)
	if padded {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func TestSize(t *testing.T) {
	t.Parallel()
	req := rfc5769.Request
	tests := []struct {
		name    string
		b       []byte
		want    int
		wantErr error
	}{
		{"RFC 5769 request", req, len(req), nil},
		{"RFC 5769 IPv6 response", rfc5769.ResponseIPv6, len(rfc5769.ResponseIPv6), nil},
		{"request followed by more", append(append([]byte(nil), req...), 0x00, 0x01), len(req), nil},
		{"header only of a longer message", req[:20], 0, stunframe.ErrIncomplete},
		{"three bytes", req[:3], 0, stunframe.ErrIncomplete},
		{"seven bytes of STUN", req[:7], 0, stunframe.ErrIncomplete},
		{"bad magic cookie", append([]byte{0, 1, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...), 0, stunframe.ErrInvalid},
		{"STUN length not a multiple of 4", []byte{0, 1, 0, 3, 0x21, 0x12, 0xa4, 0x42}, 0, stunframe.ErrInvalid},
		{"ChannelData padded", channelData("hello", true), 12, nil},
		{"ChannelData aligned", channelData("abcd", true), 8, nil},
		{"ChannelData waiting for padding", channelData("hello", false), 0, stunframe.ErrIncomplete},
		{"ChannelData empty", channelData("", true), 4, nil},
		{"channel number above 0x4FFF (RFC 5766, pion accepts it)", []byte{0x50, 0, 0, 0}, 4, nil},
		{"top bits 10", []byte{0x80, 0, 0, 0}, 0, stunframe.ErrInvalid},
		{"TLS ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, 0, stunframe.ErrInvalid},
		// "PUT ..." starts with 0x50: a ChannelData header (channel 0x5055)
		// to pion and so to stunfault, waiting for its 12064 bytes.
		{"HTTP PUT", []byte("PUT / HTTP/1.1\r\n"), 0, stunframe.ErrIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stunframe.Size(tt.b)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("Size = %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReaderReassemblesFramesFromAnySplit(t *testing.T) {
	t.Parallel()
	frames := [][]byte{rfc5769.Request, channelData("hi", true), rfc5769.ResponseIPv4, channelData("", true), rfc5769.RequestLongTerm}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f...)
	}
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			fr := stunframe.NewReader(r())
			for i, want := range frames {
				got, err := fr.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("frame %d = %x, want %x", i, got, want)
				}
			}
			if _, err := fr.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	t.Parallel()
	t.Run("stream ends inside a frame", func(t *testing.T) {
		fr := stunframe.NewReader(bytes.NewReader(rfc5769.Request[:30]))
		if _, err := fr.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("got %v, want ErrUnexpectedEOF", err)
		}
	})
	t.Run("garbage after a frame", func(t *testing.T) {
		fr := stunframe.NewReader(bytes.NewReader(append(append([]byte(nil), rfc5769.Request...), "\xffgarbage"...)))
		if _, err := fr.Next(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := fr.Next(); !errors.Is(err, stunframe.ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		}
	})
	t.Run("largest STUN message", func(t *testing.T) {
		big := make([]byte, stunframe.MaxFrame-3) // length field 0xFFFC
		copy(big, []byte{0, 1, 0xFF, 0xFC, 0x21, 0x12, 0xa4, 0x42})
		fr := stunframe.NewReader(iotest.HalfReader(bytes.NewReader(big)))
		got, err := fr.Next()
		if err != nil || len(got) != len(big) {
			t.Errorf("got %d bytes, %v; want %d", len(got), err, len(big))
		}
	})
}

// FuzzSize: Size never panics and never claims more bytes than it has.
func FuzzSize(f *testing.F) {
	for _, v := range rfc5769.All() {
		f.Add(v)
	}
	f.Add(channelData("abc", true))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := stunframe.Size(b)
		if err == nil && (n < 4 || n > len(b)) {
			t.Fatalf("Size = %d for %d bytes", n, len(b))
		}
	})
}

// FuzzReader: the frames a Reader returns are the stream's bytes, in order,
// however the stream is split.
func FuzzReader(f *testing.F) {
	for _, v := range rfc5769.All() {
		f.Add(append(append([]byte(nil), v...), channelData("x", true)...))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		fr := stunframe.NewReader(iotest.OneByteReader(bytes.NewReader(stream)))
		var got []byte
		for {
			b, err := fr.Next()
			if err != nil {
				break
			}
			got = append(got, b...)
		}
		if !bytes.HasPrefix(stream, got) {
			t.Fatalf("frames are not a prefix of the stream")
		}
	})
}
