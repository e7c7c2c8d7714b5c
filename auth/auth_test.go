package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pulse-go/pulse/hub"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// claims are valid claims for an hour, with two patterns.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":      "ann",
		"exp":      time.Now().Add(time.Hour).Unix(),
		"channels": []any{"room.*", "news"},
		"publish":  []any{"room.*"},
	}
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, c jwt.MapClaims, k any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(c jwt.MapClaims, key string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, key)
	} else {
		c[key] = v
	}
	return c
}

func hmacVerifier(t *testing.T) *Verifier {
	v, err := NewHMAC(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHMAC(t *testing.T) {
	v := hmacVerifier(t)
	id, err := v.Verify(sign(t, jwt.SigningMethodHS256, "", claims(), secret))
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "ann" || !slices.Equal(id.Channels, []string{"room.*", "news"}) || !slices.Equal(id.Publish, []string{"room.*"}) {
		t.Errorf("identity %+v", id)
	}
	if until := time.Until(id.Expires); until < time.Hour || until > time.Hour+DefaultLeeway+time.Second {
		t.Errorf("expires in %v, want an hour and the leeway", until)
	}
	if id.Claims["sub"] != "ann" {
		t.Errorf("claims %v", id.Claims)
	}
}

// Every bad token is refused, with a reason that says why.
func TestHMACRefusals(t *testing.T) {
	v := hmacVerifier(t)
	past := time.Now().Add(-time.Hour).Unix()
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"empty", "", "malformed"},
		{"junk", "a.b.c", "malformed"},
		{"alg none", none, "signing method none is invalid"},
		{"other secret", sign(t, jwt.SigningMethodHS256, "", claims(), []byte(strings.Repeat("x", 32))), "signature is invalid"},
		{"HS512", sign(t, jwt.SigningMethodHS512, "", claims(), secret), "signing method HS512 is invalid"},
		{"expired", sign(t, jwt.SigningMethodHS256, "", with(claims(), "exp", past), secret), "expired"},
		{"no exp", sign(t, jwt.SigningMethodHS256, "", with(claims(), "exp", nil), secret), "exp claim is required"},
		{"not yet", sign(t, jwt.SigningMethodHS256, "", with(claims(), "nbf", time.Now().Add(time.Hour).Unix()), secret), "not valid yet"},
		{"no sub", sign(t, jwt.SigningMethodHS256, "", with(claims(), "sub", nil), secret), "no subject"},
		{"sub not a string", sign(t, jwt.SigningMethodHS256, "", with(claims(), "sub", 7), secret), "no subject"},
		{"channels a string", sign(t, jwt.SigningMethodHS256, "", with(claims(), "channels", "room.*"), secret), `"channels" is not an array`},
		{"publish of numbers", sign(t, jwt.SigningMethodHS256, "", with(claims(), "publish", []any{1}), secret), `"publish" is not an array`},
	} {
		_, err := v.Verify(tc.token)
		if err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: Verify = %v, want an error saying %q", tc.name, err, tc.reason)
		}
	}
}

func TestExpiredWrapsHubError(t *testing.T) {
	v := hmacVerifier(t)
	_, err := v.Verify(sign(t, jwt.SigningMethodHS256, "", with(claims(), "exp", time.Now().Add(-time.Minute).Unix()), secret))
	if !errors.Is(err, hub.ErrTokenExpired) {
		t.Errorf("Verify = %v, want hub.ErrTokenExpired", err)
	}
	// Within the leeway, an expired token still passes.
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, "", with(claims(), "exp", time.Now().Add(-2*time.Second).Unix()), secret)); err != nil {
		t.Errorf("a token 2s past exp, inside the 5s leeway: %v", err)
	}
}

func TestShortSecret(t *testing.T) {
	if _, err := NewHMAC([]byte("short"), nil); err == nil {
		t.Error("NewHMAC took a 5-byte secret")
	}
}

func TestIssuerAudience(t *testing.T) {
	v, _ := NewHMAC(secret, &Options{Issuer: "me", Audience: "pulse"})
	good := with(with(claims(), "iss", "me"), "aud", "pulse")
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, "", good, secret)); err != nil {
		t.Errorf("good iss and aud: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, "", with(claims(), "iss", "other"), secret)); err == nil {
		t.Error("a token of another issuer passed")
	}
}

// signer is a private key and the PEM block of its public half.
type signer struct {
	method jwt.SigningMethod
	key    crypto.Signer
}

func (s signer) pem(t *testing.T, kid string) string {
	der, err := x509.MarshalPKIXPublicKey(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	b := &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	if kid != "" {
		b.Headers = map[string]string{"kid": kid}
	}
	return string(pem.EncodeToMemory(b))
}

func signers(t *testing.T) (rs, es, ed signer) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	return signer{jwt.SigningMethodRS256, rk}, signer{jwt.SigningMethodES256, ek}, signer{jwt.SigningMethodEdDSA, dk}
}

// Each key verifies the tokens of its kid, with its algorithm only.
func TestKeys(t *testing.T) {
	rs, es, ed := signers(t)
	v, err := NewKeys([]byte(rs.pem(t, "r")+es.pem(t, "e")+ed.pem(t, "d")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for kid, s := range map[string]signer{"r": rs, "e": es, "d": ed} {
		if _, err := v.Verify(sign(t, s.method, kid, claims(), s.key)); err != nil {
			t.Errorf("%s token of kid %q: %v", s.method.Alg(), kid, err)
		}
	}
	// The wrong kid, no kid, an unknown kid, the right kid with an
	// algorithm the key does not allow: refused.
	rsaPub, _ := x509.MarshalPKIXPublicKey(rs.key.Public())
	for name, token := range map[string]string{
		"wrong kid":   sign(t, es.method, "r", claims(), es.key),
		"no kid":      sign(t, es.method, "", claims(), es.key),
		"unknown kid": sign(t, es.method, "x", claims(), es.key),
		// The classic confusion: HS256 keyed with the RSA public key.
		"HS256 with the public key": sign(t, jwt.SigningMethodHS256, "r", claims(), rsaPub),
		"PS256 on an RSA key":       sign(t, jwt.SigningMethodPS256, "r", claims(), rs.key),
	} {
		if _, err := v.Verify(token); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// A lone key needs no kid; several keys each need one.
func TestKeyIDs(t *testing.T) {
	_, es, ed := signers(t)
	v, err := NewKeys([]byte(es.pem(t, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, es.method, "", claims(), es.key)); err != nil {
		t.Errorf("lone key, no kid: %v", err)
	}
	if _, err := NewKeys([]byte(es.pem(t, "")+ed.pem(t, "d")), nil); err == nil {
		t.Error("two keys, one without a kid: accepted")
	}
	if _, err := NewKeys([]byte(es.pem(t, "a")+ed.pem(t, "a")), nil); err == nil {
		t.Error("two keys of one kid: accepted")
	}
}

func TestBadKeyFiles(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, data := range map[string]string{
		"empty":       "",
		"private key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"junk block":  "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString([]byte("junk")) + "\n-----END PUBLIC KEY-----\n",
		"RSA 1024":    signer{key: small}.pem(t, ""),
		"P-384":       signer{key: p384}.pem(t, ""),
	} {
		if _, err := NewKeys([]byte(data), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzVerify: no input panics, and nothing but a token signed with the
// secret passes.
func FuzzVerify(f *testing.F) {
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4iLCJleHAiOjk5OTk5OTk5OTl9.AAAA")
	v, _ := NewHMAC(secret, nil)
	f.Fuzz(func(t *testing.T, token string) {
		if id, err := v.Verify(token); err == nil {
			t.Errorf("fuzzed token %q verified as %+v", token, id)
		}
	})
}
