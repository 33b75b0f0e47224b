package server

import (
	"crypto/x509"
	"encoding/pem"
	"net/netip"
	"time"
)

// SelfSignedPEM returns a certificate and key for ip, as PEM, made as a tls
// listener makes its own (for tests that configure cert_file and key_file).
func SelfSignedPEM(ip netip.Addr) (cert, key []byte, err error) {
	c, certPEM, err := selfSigned(ip, time.Now())
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
