package stunwire

import "testing"

func TestClassify(t *testing.T) {
	stun := []byte{0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42}
	tests := []struct {
		name string
		b    []byte
		kind Kind
		size int
	}{
		{"empty", nil, Incomplete, 0},
		{"three bytes", []byte{0, 1, 0}, Incomplete, 0},
		{"stun header start", stun[:4], Incomplete, 0},
		{"stun", stun, STUN, 24},
		{"stun bad cookie", []byte{0, 1, 0, 4, 1, 2, 3, 4}, Invalid, 0},
		{"stun odd length", []byte{0, 1, 0, 5, 0x21, 0x12, 0xA4, 0x42}, Invalid, 0},
		{"channel 0x4000", []byte{0x40, 0x00, 0x00, 0x03}, ChannelData, 7},
		{"channel 0x4FFF", []byte{0x4F, 0xFF, 0x00, 0x00}, ChannelData, 4},
		{"channel 0x5000 (RFC 5766)", []byte{0x50, 0x00, 0x00, 0x00}, ChannelData, 4},
		{"channel 0x7FFF (RFC 5766)", []byte{0x7F, 0xFF, 0x00, 0x01}, ChannelData, 5},
		{"top bits 10", []byte{0x80, 0, 0, 0}, Invalid, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, n := Classify(tt.b); k != tt.kind || n != tt.size {
				t.Errorf("Classify(% x) = %d, %d; want %d, %d", tt.b, k, n, tt.kind, tt.size)
			}
		})
	}
}
