package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func token(t *testing.T, method jwt.SigningMethod, key any, sub string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "channels": []any{"room.*"}, "publish": []any{"room.*"},
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Without identity flags the server says it is anonymous, and the demos'
// tokenless clients connect.
func TestServeAnonymous(t *testing.T) {
	s := startServe(t)
	s.logs.await(t, "anonymous")
	ws := dial(t, s.url("ws", "/ws"))
	readUntil(t, ws, `"type":"welcome"`)
}

// --jwt-secret: no token at the upgrade is a 401; a token in the hello
// lets a pulse.v1 client in, under its patterns.
func TestServeJWTSecret(t *testing.T) {
	s := startServe(t, "--jwt-secret", testSecret)
	s.logs.await(t, "tokens required", "HS256")
	_, resp, err := websocket.DefaultDialer.Dial(s.url("ws", "/ws"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain client without a token: %v %v, want 401", err, status(resp))
	}
	resp.Body.Close()
	d := websocket.Dialer{Subprotocols: []string{"pulse.v1"}, HandshakeTimeout: wait}
	ws, resp, err := d.Dial(s.url("ws", "/ws"), nil)
	if err != nil {
		t.Fatalf("pulse.v1 client: %v %v", err, status(resp))
	}
	defer ws.Close()
	readUntil(t, ws, `"type":"welcome"`)
	write(t, ws, websocket.TextMessage, `{"type":"hello","id":1,"token":"`+token(t, jwt.SigningMethodHS256, []byte(testSecret), "ann")+`"}`)
	readUntil(t, ws, `"user":"ann"`)
	write(t, ws, websocket.TextMessage, `{"type":"subscribe","id":2,"channel":"lobby"}`)
	readUntil(t, ws, `"code":"forbidden"`)
}

// --jwt-keys: a token signed with the key's private half, named by its
// kid, passes at the upgrade.
func TestServeJWTKeys(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	file := filepath.Join(t.TempDir(), "keys.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"kid": "k1"}, Bytes: der}), 0o600)
	s := startServe(t, "--jwt-keys", file)
	s.logs.await(t, "tokens required", "public keys")
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	ws := dial(t, s.url("ws", "/ws?token="+signed))
	readUntil(t, ws, `"user":"bob"`)
}

func TestServeAuthFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		flags   []string
		wantErr string
	}{
		{[]string{"--jwt-secret", "short"}, "at least 32 bytes"},
		{[]string{"--jwt-secret", testSecret, "--jwt-keys", "k.pem"}, "exclude each other"},
		{[]string{"--jwt-keys", filepath.Join(t.TempDir(), "none.pem")}, "--jwt-keys"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.flags...)
		err := run(t.Context(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("serve %q = %v, want error containing %q", tc.flags, err, tc.wantErr)
		}
	}
}

// A limit refuses with 503 and Retry-After, counted in the metrics.
func TestServeConnectionLimit(t *testing.T) {
	s := startServe(t, "--max-conns-per-addr", "1")
	dial(t, s.url("ws", "/echo"))
	_, resp, err := websocket.DefaultDialer.Dial(s.url("ws", "/echo"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second connection of one address: %v %v, want 503 with Retry-After", err, status(resp))
	}
	resp.Body.Close()
	s.logs.await(t, "request refused", "status=503", "too many connections from your address")
	_, body := get(t, s.url("http", "/metrics"))
	for _, want := range []string{`pulse_refusals_total{reason="address_connections"} 1`, `pulse_refusals_total{reason="publish_rate"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// --jwt-keys with a URL: the keys of the JWKS there.
func TestServeJWKS(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":%q}]}`, base64.RawURLEncoding.EncodeToString(pub))
	}))
	defer jwks.Close()
	s := startServe(t, "--jwt-keys", jwks.URL)
	s.logs.await(t, "tokens required", "JWKS")
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "cy", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	ws := dial(t, s.url("ws", "/ws?token="+signed))
	readUntil(t, ws, `"user":"cy"`)
}
