package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/stunfault/stunfault/config"
)

// A tls listener serves STUN/TURN over TLS over TCP (turns: URLs). The TLS
// layer sits beneath the interception: stunfault's TCP wrapper (tcpConn)
// reads the decrypted stream, so every rule applies on TLS exactly as on
// TCP, and `close` closes the TLS connection.

// listenerCert is the certificate a tls listener serves.
type listenerCert struct {
	config *tls.Config
	// file is the PEM certificate's path: the configured cert_file, or the
	// generated one's (removed by Close).
	file string
	// spki is the base64 SHA-256 of the leaf's SubjectPublicKeyInfo, the
	// value Chromium's --ignore-certificate-errors-spki-list takes.
	spki string
}

// selfSignedValidity is how long a generated certificate is valid.
const selfSignedValidity = 30 * 24 * time.Hour

// newListenerCert loads l's certificate, or generates a self-signed one for
// addr (and, for an unspecified address, for 127.0.0.1 and ::1) into dir.
func newListenerCert(l config.Listener, addr netip.AddrPort, dir string) (*listenerCert, error) {
	var cert tls.Certificate
	file := l.CertFile
	if l.CertFile != "" {
		var err error
		if cert, err = tls.LoadX509KeyPair(l.CertFile, l.KeyFile); err != nil {
			return nil, fmt.Errorf("loading %s and %s: %w", l.CertFile, l.KeyFile, err)
		}
	} else {
		var certPEM []byte
		var err error
		if cert, certPEM, err = selfSigned(addr.Addr(), time.Now()); err != nil {
			return nil, fmt.Errorf("generating a self-signed certificate: %w", err)
		}
		file = filepath.Join(dir, "tls-"+strconv.Itoa(int(addr.Port()))+".pem")
		if err := os.WriteFile(file, certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("writing the generated certificate: %w", err)
		}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate: %w", err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return &listenerCert{
		config: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		file:   file,
		spki:   base64.StdEncoding.EncodeToString(sum[:]),
	}, nil
}

// selfSigned returns a self-signed ECDSA P-256 certificate for ip, valid
// from an hour before now for selfSignedValidity, and its PEM form.
func selfSigned(ip netip.Addr, now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ips := []net.IP{net.IP(ip.AsSlice())}
	if ip.IsUnspecified() {
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "stunfault " + ip.String(), Organization: []string{"stunfault (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// makeCertDir returns the folder generated certificates go to, creating it
// on first use. Called under s.mu from Start.
func (s *Server) makeCertDir() (string, error) {
	if s.certDir == "" {
		d, err := os.MkdirTemp("", "stunfault-tls-")
		if err != nil {
			return "", fmt.Errorf("a folder for generated certificates: %w", err)
		}
		s.certDir = d
	}
	return s.certDir, nil
}

// removeCertDir removes the generated certificates, if any.
func (s *Server) removeCertDir() {
	if s.certDir != "" {
		if err := os.RemoveAll(s.certDir); err != nil {
			s.log.Warn("removing generated certificates", "dir", s.certDir, "err", err)
		}
		s.certDir = ""
	}
}
