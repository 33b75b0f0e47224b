// Package stunerror builds the STUN error responses stunfault injects in
// place of pion's answer: same method and transaction ID as the request,
// ERROR-CODE with the configured code and reason, the companion attributes
// the code calls for, SOFTWARE, MESSAGE-INTEGRITY as asked, and FINGERPRINT.
// Encoding is pion/stun's; this package only decides what goes in.
package stunerror

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun/v4"
)

// Integrity modes of Spec.Integrity.
const (
	// IntegrityAuto signs the response with the request's key when the
	// request was signed and the key is known, except for 401 and 438, which
	// RFC 8489 §9.2.4 says carry no MESSAGE-INTEGRITY.
	IntegrityAuto = "auto"
	// IntegrityNone never signs.
	IntegrityNone = "none"
	// IntegrityBad adds a MESSAGE-INTEGRITY made with a wrong key, so a
	// client that checks it must reject the response.
	IntegrityBad = "bad"
)

// ErrNotRequest is returned for bytes that are not a STUN request.
var ErrNotRequest = errors.New("stunerror: not a STUN request")

// Spec is what an injected error response carries.
type Spec struct {
	// Code (300-699) and Reason go into ERROR-CODE. An empty Reason uses
	// the RFC's phrase for the code, when there is one.
	Code   int
	Reason string
	// Software is the SOFTWARE attribute; empty leaves it out.
	Software string
	// Realm and Nonce are added to 401 and 438 responses (RFC 8489 §9.2).
	Realm string
	Nonce string
	// Alternate is the ALTERNATE-SERVER of a 300 response.
	Alternate netip.AddrPort
	// Unknown lists the UNKNOWN-ATTRIBUTES of a 420 response; when empty,
	// the request's comprehension-required attributes that pion does not
	// know are listed.
	Unknown []uint16
	// Integrity is IntegrityAuto (the default when empty), IntegrityNone
	// or IntegrityBad.
	Integrity string
	// Key is the long-term key (MD5(username:realm:password)) of the
	// request's USERNAME, used to sign; nil when unknown.
	Key []byte
}

// msgPool recycles the messages Append decodes into and builds in, so that
// an injected error costs no allocation once warm (signing aside).
var msgPool = sync.Pool{New: func() any { return &stun.Message{Raw: make([]byte, 0, 512)} }}

// Build returns the error response to req (a whole STUN request) described
// by s, in a new slice. See Append.
func Build(req []byte, s Spec) ([]byte, error) {
	return Append(nil, req, s)
}

// Append appends to dst the error response to req (a whole STUN request)
// described by s, and returns the extended slice. It never panics on
// malformed input: bytes that are not a decodable STUN request get
// ErrNotRequest. req is not modified or retained.
func Append(dst, req []byte, s Spec) ([]byte, error) {
	if !stun.IsMessage(req) {
		return dst, ErrNotRequest
	}
	if s.Code < 300 || s.Code > 699 {
		return dst, fmt.Errorf("stunerror: code %d outside 300-699", s.Code)
	}
	m := msgPool.Get().(*stun.Message)
	defer msgPool.Put(m)
	m.Reset()
	m.Raw = append(m.Raw, req...)
	if err := m.Decode(); err != nil {
		return dst, fmt.Errorf("%w: %w", ErrNotRequest, err)
	}
	if m.Type.Class != stun.ClassRequest {
		return dst, fmt.Errorf("%w: class is %s", ErrNotRequest, m.Type.Class)
	}

	out := msgPool.Get().(*stun.Message)
	defer msgPool.Put(out)
	out.Reset()
	out.TransactionID = m.TransactionID
	out.SetType(stun.NewType(m.Type.Method, stun.ClassErrorResponse))
	out.WriteHeader()
	addErrorCode(out, s.Code, s.Reason)
	switch s.Code {
	case 300:
		if s.Alternate.IsValid() {
			a := stun.AlternateServer{IP: net.IP(s.Alternate.Addr().Unmap().AsSlice()), Port: int(s.Alternate.Port())}
			if err := a.AddTo(out); err != nil {
				return dst, fmt.Errorf("stunerror: ALTERNATE-SERVER: %w", err)
			}
		}
	case 401, 438:
		if s.Realm != "" {
			out.Add(stun.AttrRealm, []byte(s.Realm))
		}
		if s.Nonce != "" {
			out.Add(stun.AttrNonce, []byte(s.Nonce))
		}
	case 420:
		unknown := s.Unknown
		if len(unknown) == 0 {
			unknown = unknownRequired(m)
		}
		var v [2 * 16]byte
		b := v[:0]
		for i, u := range unknown {
			if i == 16 {
				break // a handful is plenty; the attribute stays small
			}
			b = binary.BigEndian.AppendUint16(b, u)
		}
		out.Add(stun.AttrUnknownAttributes, b)
	}
	if s.Software != "" {
		out.Add(stun.AttrSoftware, []byte(s.Software))
	}
	if mi := integrity(m, s); mi != nil {
		if err := mi.AddTo(out); err != nil {
			return dst, fmt.Errorf("stunerror: MESSAGE-INTEGRITY: %w", err)
		}
	}
	if err := stun.Fingerprint.AddTo(out); err != nil {
		return dst, fmt.Errorf("stunerror: FINGERPRINT: %w", err)
	}
	return append(dst, out.Raw...), nil
}

// addErrorCode adds ERROR-CODE (RFC 8489 §14.8) without allocating. An
// empty reason uses the RFC's phrase for the code; reasons are cut at 127
// bytes (the RFC's limit is 128 characters).
func addErrorCode(m *stun.Message, code int, reason string) {
	if reason == "" {
		reason = defaultReason(code)
	}
	var v [4 + 127]byte
	v[2], v[3] = byte(code/100), byte(code%100)
	n := copy(v[4:], reason)
	m.Add(stun.AttrErrorCode, v[:4+n])
}

// integrity returns the MESSAGE-INTEGRITY setter for s, or nil.
func integrity(req *stun.Message, s Spec) stun.Setter {
	if s.Key == nil && s.Integrity != IntegrityBad {
		return nil
	}
	switch s.Integrity {
	case IntegrityNone:
		return nil
	case IntegrityBad:
		// The real key with every bit flipped: well-formed, and wrong.
		wrong := []byte("stunfault: no such key")
		if s.Key != nil {
			wrong = make([]byte, len(s.Key))
			for i, b := range s.Key {
				wrong[i] = ^b
			}
		}
		return stun.MessageIntegrity(wrong)
	}
	if s.Code == 401 || s.Code == 438 || s.Key == nil || !req.Contains(stun.AttrMessageIntegrity) {
		return nil
	}
	return stun.MessageIntegrity(s.Key)
}

// known are the comprehension-required attributes pion understands; a 420
// without an explicit list names the request's others.
var known = map[stun.AttrType]bool{
	stun.AttrMappedAddress: true, stun.AttrUsername: true, stun.AttrMessageIntegrity: true,
	stun.AttrErrorCode: true, stun.AttrUnknownAttributes: true, stun.AttrRealm: true,
	stun.AttrNonce: true, stun.AttrXORMappedAddress: true, stun.AttrChannelNumber: true,
	stun.AttrLifetime: true, stun.AttrXORPeerAddress: true, stun.AttrData: true,
	stun.AttrXORRelayedAddress: true, stun.AttrRequestedAddressFamily: true, stun.AttrEvenPort: true,
	stun.AttrRequestedTransport: true, stun.AttrDontFragment: true, stun.AttrReservationToken: true,
	stun.AttrPriority: true, stun.AttrUseCandidate: true, stun.AttrMessageIntegritySHA256: true,
	stun.AttrUserhash: true, stun.AttrPasswordAlgorithm: true, stun.AttrConnectionID: true,
}

func unknownRequired(m *stun.Message) []uint16 {
	var out []uint16
	for _, a := range m.Attributes {
		if a.Type < 0x8000 && !known[a.Type] {
			out = append(out, uint16(a.Type))
		}
	}
	return out
}

// defaultReason is the reason phrase RFC 8489 §14.8 and RFC 8656 §18
// suggest for code, or "Error".
func defaultReason(code int) string {
	switch code {
	case 300:
		return "Try Alternate"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 405:
		return "Mobility Forbidden"
	case 420:
		return "Unknown Attribute"
	case 437:
		return "Allocation Mismatch"
	case 438:
		return "Stale Nonce"
	case 440:
		return "Address Family not Supported"
	case 441:
		return "Wrong Credentials"
	case 442:
		return "Unsupported Transport Protocol"
	case 443:
		return "Peer Address Family Mismatch"
	case 486:
		return "Allocation Quota Reached"
	case 500:
		return "Server Error"
	case 508:
		return "Insufficient Capacity"
	}
	return "Error"
}
