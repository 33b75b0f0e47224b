// Package pcapng writes pcapng files (draft-ietf-opsawg-pcapng) of raw IP
// packets, each with a comment: the few blocks a capture of stunfault
// needs, a Section Header, one Interface Description (LINKTYPE_RAW,
// nanosecond timestamps) and an Enhanced Packet with opt_comment per
// packet.
//
// It exists because the pcapng writer of github.com/google/gopacket/pcapgo
// (NgWriter, last released in 2020) writes no per-packet options, and the
// maintained fork that does (github.com/gopacket/gopacket) is a large
// dependency for what is three block layouts.
package pcapng

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Block types and option codes (draft-ietf-opsawg-pcapng §4, §3.5).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	optEnd      = 0
	optComment  = 1
	optUserAppl = 4 // shb_userappl
	optIfName   = 2 // if_name
	optTSResol  = 9 // if_tsresol

	linkTypeRaw = 101 // LINKTYPE_RAW: the packet starts with an IPv4 or IPv6 header
	snapLen     = 0   // no limit
)

// MaxComment bounds a packet's comment; a longer one is cut.
const MaxComment = 4096

var le = binary.LittleEndian

// Writer writes one section with one raw-IP interface. It is not safe for
// concurrent use.
type Writer struct {
	w   *bufio.Writer
	buf []byte
}

// NewWriter writes the section and interface headers to w, naming app as
// the writing application, and returns a Writer for the packets.
func NewWriter(w io.Writer, app string) (*Writer, error) {
	pw := &Writer{w: bufio.NewWriter(w)}
	shb := le.AppendUint32(nil, 0x1A2B3C4D)           // byte-order magic
	shb = le.AppendUint16(shb, 1)                     // major
	shb = le.AppendUint16(shb, 0)                     // minor
	shb = le.AppendUint64(shb, 0xFFFFFFFFFFFFFFFF)    // section length: unknown
	shb = appendOption(shb, optUserAppl, []byte(app)) //
	shb = appendOption(shb, optEnd, nil)
	idb := le.AppendUint16(nil, linkTypeRaw)
	idb = le.AppendUint16(idb, 0) // reserved
	idb = le.AppendUint32(idb, snapLen)
	idb = appendOption(idb, optIfName, []byte(app))
	idb = appendOption(idb, optTSResol, []byte{9}) // 10^-9 s
	idb = appendOption(idb, optEnd, nil)
	if err := pw.block(blockSHB, shb); err != nil {
		return nil, err
	}
	if err := pw.block(blockIDB, idb); err != nil {
		return nil, err
	}
	return pw, nil
}

// WritePacket writes one packet: data, a raw IPv4 or IPv6 packet, seen at
// ts, with comment (none when empty).
func (pw *Writer) WritePacket(ts time.Time, data []byte, comment string) error {
	if len(data) > 1<<20 {
		return fmt.Errorf("pcapng: packet of %d bytes", len(data))
	}
	ns := uint64(ts.UnixNano())
	b := le.AppendUint32(pw.buf[:0], 0) // interface 0
	b = le.AppendUint32(b, uint32(ns>>32))
	b = le.AppendUint32(b, uint32(ns))
	b = le.AppendUint32(b, uint32(len(data))) // captured
	b = le.AppendUint32(b, uint32(len(data))) // original
	b = append(b, data...)
	b = pad(b)
	if comment != "" {
		if len(comment) > MaxComment {
			comment = comment[:MaxComment]
		}
		b = appendOption(b, optComment, []byte(comment))
		b = appendOption(b, optEnd, nil)
	}
	pw.buf = b
	return pw.block(blockEPB, b)
}

// Flush writes what is buffered to the underlying writer.
func (pw *Writer) Flush() error { return pw.w.Flush() }

// block writes one block: type, total length, body, total length.
func (pw *Writer) block(typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	var hdr [8]byte
	le.PutUint32(hdr[0:], typ)
	le.PutUint32(hdr[4:], n)
	if _, err := pw.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := pw.w.Write(body); err != nil {
		return err
	}
	_, err := pw.w.Write(hdr[4:8])
	return err
}

// appendOption appends one option: code, length, value padded to 32 bits.
func appendOption(b []byte, code uint16, v []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(v)))
	return pad(append(b, v...))
}

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
