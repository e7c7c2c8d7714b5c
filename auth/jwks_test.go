package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// asJWK is the JWK of a signer's public key.
func asJWK(t *testing.T, s signer, kid string) map[string]string {
	t.Helper()
	switch pub := s.key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes()
		return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pub)}
	}
	t.Fatalf("no JWK for %T", s.key)
	return nil
}

// jwksServer serves a key set that a test may change; it counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int64
}

func (j *jwksServer) set(keys ...map[string]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

func (j *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.fetches.Add(1)
	j.mu.Lock()
	defer j.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
}

// The keys of a JWKS verify tokens by kid; a key published later is
// fetched when a token first names it; one withdrawn stops verifying at
// the next refresh.
func TestJWKS(t *testing.T) {
	rs, es, ed := signers(t)
	src := &jwksServer{}
	// Leftovers an identity provider may publish: skipped, not fatal.
	encryption := map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}
	p384 := map[string]string{"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}
	src.set(asJWK(t, rs, "r"), asJWK(t, es, "e"), encryption, p384)
	hs := httptest.NewServer(src)
	defer hs.Close()
	v, err := NewJWKS(t.Context(), hs.URL, &Options{Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for kid, s := range map[string]signer{"r": rs, "e": es} {
		if _, err := v.Verify(sign(t, s.method, kid, claims(), s.key)); err != nil {
			t.Errorf("kid %q: %v", kid, err)
		}
	}
	if _, err := v.Verify(sign(t, es.method, "r", claims(), es.key)); err == nil {
		t.Error("an ES256 token under the RSA key's kid verified")
	}

	src.set(asJWK(t, es, "e"), asJWK(t, ed, "d")) // rotated: r out, d in
	if _, err := v.Verify(sign(t, ed.method, "d", claims(), ed.key)); err != nil {
		t.Errorf("a key published after the start: %v", err)
	}
	fetches := src.fetches.Load()
	if _, err := v.Verify(sign(t, ed.method, "unknown", claims(), ed.key)); err == nil {
		t.Error("an unknown kid verified")
	}
	if src.fetches.Load() != fetches {
		t.Error("a second unknown kid within 30 s fetched the set again")
	}
	if err := v.jwks.update(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, rs.method, "r", claims(), rs.key)); err == nil {
		t.Error("a withdrawn key still verified after a refresh")
	}
}

func TestJWKSRefusals(t *testing.T) {
	for name, handler := range map[string]http.HandlerFunc{
		"404":      http.NotFound,
		"not JSON": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) },
		"no keys":  func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"keys":[]}`)) },
		"too big":  func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, maxJWKSBody+1)) },
	} {
		hs := httptest.NewServer(handler)
		if _, err := NewJWKS(t.Context(), hs.URL, nil); err == nil {
			t.Errorf("%s: NewJWKS succeeded", name)
		}
		hs.Close()
	}
}

// Run refreshes every Refresh until its context ends.
func TestJWKSRun(t *testing.T) {
	src := &jwksServer{}
	_, es, _ := signers(t)
	src.set(asJWK(t, es, "e"))
	hs := httptest.NewServer(src)
	defer hs.Close()
	v, err := NewJWKS(t.Context(), hs.URL, &Options{Refresh: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, nil) }()
	deadline := time.After(10 * time.Second)
	for src.fetches.Load() < 3 {
		select {
		case <-deadline:
			t.Fatal("Run fetched less than twice in 10 s")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	hmac, _ := NewHMAC(secret, nil)
	if err := hmac.Run(t.Context(), nil); err != nil {
		t.Errorf("Run of an HMAC verifier: %v", err)
	}
}
