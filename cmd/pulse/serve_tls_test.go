package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse/client"
)

// selfSigned writes a certificate for 127.0.0.1, valid for an hour, and its
// key, and returns their files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pulse test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// --tls-cert and --tls-key serve https:// and wss://; a client that
// trusts the certificate through its CA file connects, one that does not
// is refused by its own TLS check.
func TestServeTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	s := startServe(t, "--tls-cert", certFile, "--tls-key", keyFile, "--jwt-secret", testSecret)
	s.logs.await(t, "listening", "url=https://")
	config, err := client.LoadCA(certFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: wait, Transport: &http.Transport{TLSClientConfig: config, DisableKeepAlives: true}}
	resp, err := hc.Get(s.url("https", "/healthz"))
	if err != nil {
		t.Fatalf("GET https /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("GET https /healthz: %d %q", resp.StatusCode, body)
	}
	if _, _, err := websocket.DefaultDialer.Dial(s.url("wss", "/echo"), nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial without the CA: %v, want a certificate error", err)
	}

	c := client.New(s.url("wss", "/ws"), &client.Options{
		TLS: config,
		Token: func(context.Context) (string, error) {
			return token(t, jwt.SigningMethodHS256, []byte(testSecret), "ann"), nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()
	if _, err := c.Subscribe(ctx, "room.1", nil); err != nil {
		t.Fatalf("subscribe over wss: %v", err)
	}
}

// pulse connect --ca --token reaches a wss:// server that requires tokens.
func TestConnectTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	s := startServe(t, "--tls-cert", certFile, "--tls-key", keyFile, "--jwt-secret", testSecret)
	tok := token(t, jwt.SigningMethodHS256, []byte(testSecret), "ann")
	c := startCommandReading(t, strings.NewReader("hi\n"), nil, "connect", "--ca", certFile, "--token", tok, "--publish", "room.1", s.url("wss", "/ws"))
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v\n%s", err, c.err)
	}
	if !strings.Contains(c.err.String(), "ack room.1") {
		t.Fatalf("no ack printed:\n%s", c.err)
	}
}

func TestTLSFlagErrors(t *testing.T) {
	certFile, _ := selfSigned(t)
	for _, tc := range []struct {
		flags   []string
		wantErr string
	}{
		{[]string{"--tls-cert", certFile}, "go together"},
		{[]string{"--tls-cert", certFile, "--tls-key", certFile}, "--tls-cert, --tls-key"},
	} {
		err := run(t.Context(), append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.flags...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("serve %q = %v, want error containing %q", tc.flags, err, tc.wantErr)
		}
	}
	if err := run(t.Context(), []string{"connect", "--ca", certFile + ".none", "wss://127.0.0.1:1/ws"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--ca") {
		t.Errorf("connect with a missing CA file: %v", err)
	}
}
