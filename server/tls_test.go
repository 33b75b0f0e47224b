package server_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// tlsConfig is testConfig plus a tls listener on a free loopback port.
func tlsConfig() config.Config {
	cfg := testConfig()
	cfg.Listen = append(cfg.Listen, config.Listener{Transport: "tls", Address: "127.0.0.1:0"})
	return cfg
}

func tlsListener(t *testing.T, srv *server.Server) server.Listener {
	t.Helper()
	for _, l := range srv.Listeners() {
		if l.Transport == "tls" {
			return l
		}
	}
	t.Fatal("no tls listener")
	return server.Listener{}
}

// dialTLS opens a TLS connection to the server's tls listener that trusts
// only the certificate the server reports, verifying it for 127.0.0.1.
func dialTLS(t *testing.T, srv *server.Server) *tls.Conn {
	t.Helper()
	l := tlsListener(t, srv)
	pemBytes, err := os.ReadFile(l.CertFile)
	if err != nil {
		t.Fatalf("the reported certificate %q: %v", l.CertFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no PEM certificate", l.CertFile)
	}
	c, err := tls.Dial("tcp", l.Addr.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to %s, trusting %s: %v", l.Addr, l.CertFile, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTLSListenerReportsItsCertificate(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ptr(tlsConfig()))
	l := tlsListener(t, srv)
	c := dialTLS(t, srv) // verifies the generated certificate for 127.0.0.1
	leaf := c.ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	if want := base64.StdEncoding.EncodeToString(sum[:]); l.SPKI != want {
		t.Errorf("Listener.SPKI = %q, want the served certificate's %q", l.SPKI, want)
	}
	var turns []string
	for _, ice := range srv.ICEServers() {
		for _, u := range ice.URLs {
			if regexp.MustCompile(`^turns:`).MatchString(u) {
				turns = append(turns, u)
			}
		}
	}
	if want := "turns:" + l.Addr.String() + "?transport=tcp"; len(turns) != 1 || turns[0] != want {
		t.Errorf("ICE servers' turns: URLs = %q, want [%q]", turns, want)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.CertFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the generated certificate %s outlived Close: %v", l.CertFile, err)
	}
}

// TestTLSRulesApplyAsOnTCP checks what a client sees over TLS: pion's
// answers, an injected error, and close.
func TestTLSRulesApplyAsOnTCP(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ptr(tlsConfig()))

	c := dialTLS(t, srv)
	conn := turn.NewSTUNConn(c)
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: tlsListener(t, srv).Addr.String(),
		TURNServerAddr: tlsListener(t, srv).Addr.String(),
		Username:       "user", Password: "pass", Realm: srv.Config().Server.Realm,
		Conn: conn, RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TLS: %v", err)
	}
	if _, ok := relay.LocalAddr().(*net.UDPAddr); !ok {
		t.Errorf("relayed address %v, want a UDP address", relay.LocalAddr())
	}
	_ = relay.Close()

	addRule(t, srv, faults.Rule{ID: "tls-403", Match: faults.Match{Methods: []string{"binding"}, Transports: []string{"tcp"}},
		Action: faults.Action{Type: "error", Code: 403}})
	res := exchangeOn(t, dialTLS(t, srv), stun.MustBuild(stun.TransactionID, stun.BindingRequest))
	if code := errorCode(t, res); code != 403 {
		t.Errorf("Binding over TLS with a 403 rule on tcp: got %v (code %d), want 403", res.Type, code)
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "tls-403"}); n != 1 {
		t.Errorf("journal: tls-403 fired %d times, want 1", n)
	}

	addRule(t, srv, faults.Rule{ID: "tls-403", Match: faults.Match{Methods: []string{"binding"}, Transports: []string{"tcp"}}, Action: faults.Action{Type: "close"}})
	tc := dialTLS(t, srv)
	if _, err := tc.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		t.Errorf("a close rule over TLS: read got %v, want EOF (the TLS connection closed)", err)
	}
}

// exchangeOn writes req on a stream connection and returns the answer.
func exchangeOn(t *testing.T, c net.Conn, req *stun.Message) *stun.Message {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body := make([]byte, int(hdr[2])<<8|int(hdr[3]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("short answer: %v", err)
	}
	res := &stun.Message{Raw: append(hdr, body...)}
	if err := res.Decode(); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestTLSListenerWithCertFiles serves a configured certificate and reports
// its path.
func TestTLSListenerWithCertFiles(t *testing.T) {
	t.Parallel()
	certFile, keyFile := writeCert(t)
	cfg := testConfig()
	cfg.Listen = append(cfg.Listen, config.Listener{Transport: "tls", Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	srv := startServer(t, &cfg)
	if l := tlsListener(t, srv); l.CertFile != certFile {
		t.Errorf("Listener.CertFile = %q, want the configured %q", l.CertFile, certFile)
	}
	res := exchangeOn(t, dialTLS(t, srv), stun.MustBuild(stun.TransactionID, stun.BindingRequest))
	if res.Type != stun.BindingSuccess {
		t.Errorf("Binding over TLS: got %v, want a success", res.Type)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, made as the server makes its own.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	cert, key, err := server.SelfSignedPEM(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCoturnUclientRelaysOverTLS(t *testing.T) {
	t.Parallel()
	needTool(t, "turnutils_uclient")
	srv := startServer(t, ptr(tlsConfig()))
	peerPort := startEchoPeer(t)
	a := tlsListener(t, srv).Addr
	const messages = 20
	out := runTool(t, "turnutils_uclient", "-t", "-S", "-c", "-n", strconv.Itoa(messages),
		"-u", "user", "-w", "pass", "-p", strconv.Itoa(int(a.Port())),
		"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), a.Addr().String())
	checkUclient(t, out, messages)
}

func TestTLSConfigErrors(t *testing.T) {
	certFile, keyFile := writeCert(t)
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		l    config.Listener
		want string
	}{
		{"cert on tcp", config.Listener{Transport: "tcp", Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile}, `listen[2].cert_file: cert_file and key_file apply to transport "tls" only, not "tcp"`},
		{"key only", config.Listener{Transport: "tls", Address: "127.0.0.1:0", KeyFile: keyFile}, "listen[2].cert_file: key_file is set: cert_file must be set too"},
		{"cert only", config.Listener{Transport: "tls", Address: "127.0.0.1:0", CertFile: certFile}, "listen[2].key_file: cert_file is set: key_file must be set too"},
		{"unloadable", config.Listener{Transport: "tls", Address: "127.0.0.1:0", CertFile: bad, KeyFile: keyFile}, "listen[2].cert_file: cannot load the certificate and key"},
		{"dtls", config.Listener{Transport: "dtls", Address: "127.0.0.1:0"}, `listen[2].transport: unknown transport "dtls" (want udp, tcp or tls)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Listen = append(cfg.Listen, tt.l)
			err := cfg.Validate()
			if err == nil || !regexp.MustCompile(regexp.QuoteMeta(tt.want)).MatchString(err.Error()) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
