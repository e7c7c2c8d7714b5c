package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A JWKS (RFC 7517) is a JSON document of public keys that an identity
// provider publishes at a URL and rotates: a Verifier made by NewJWKS
// fetches it at once, again every Options.Refresh while Run runs, and
// again when a token names a key id it does not hold (at most every
// jwksMinRefetch), so a new key is usable as soon as it is published.

// Bounds of a JWKS source.
const (
	DefaultRefresh = 5 * time.Minute
	jwksMinRefetch = 30 * time.Second
	jwksTimeout    = 10 * time.Second
	maxJWKSBody    = 1 << 20
)

// jwksAlgorithms are the algorithms a JWKS Verifier's parser takes; each
// key still allows only its own.
var jwksAlgorithms = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg(), jwt.SigningMethodEdDSA.Alg()}

// jwksSource is where a Verifier's keys come from.
type jwksSource struct {
	// Set by NewJWKS, never changes.
	url     string
	client  *http.Client
	refresh time.Duration

	mu   sync.Mutex // guards last; held across a fetch, so fetches are one at a time
	last time.Time  // when the last fetch started
}

// NewJWKS returns a Verifier of the keys of the JWKS at url (RSA of at
// least MinRSABits, EC on P-256, OKP Ed25519, each chosen by its "kid"),
// fetched now: an error if that fails. Run keeps them fresh.
func NewJWKS(ctx context.Context, url string, opts *Options) (*Verifier, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	src := &jwksSource{url: url, client: o.HTTPClient, refresh: o.Refresh}
	if src.client == nil {
		src.client = &http.Client{Timeout: jwksTimeout}
	}
	if src.refresh == 0 {
		src.refresh = DefaultRefresh
	}
	keys, err := src.fetch(ctx)
	if err != nil {
		return nil, err
	}
	v := newVerifier(keys, jwksAlgorithms, &o)
	v.jwks = src
	return v, nil
}

// Run fetches the JWKS every Options.Refresh until ctx ends, and returns
// nil then; a failed fetch keeps the keys in force, and is reported to
// failed, if not nil. For a Verifier not made by NewJWKS it returns at
// once.
func (v *Verifier) Run(ctx context.Context, failed func(error)) error {
	if v.jwks == nil {
		return nil
	}
	tick := time.NewTicker(v.jwks.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := v.jwks.update(ctx, v); err != nil && failed != nil {
			failed(err)
		}
	}
}

// update fetches the JWKS and puts its keys in force.
func (j *jwksSource) update(ctx context.Context, v *Verifier) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.updateLocked(ctx, v)
}

func (j *jwksSource) updateLocked(ctx context.Context, v *Verifier) error {
	j.last = time.Now()
	keys, err := j.fetch(ctx)
	if err != nil {
		return err
	}
	v.keys.Store(&keys)
	return nil
}

// refetch updates the keys for a token of an unknown kid, unless a fetch
// started less than jwksMinRefetch ago. A caller that finds a fetch under
// way waits for it.
func (j *jwksSource) refetch(v *Verifier) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if time.Since(j.last) < jwksMinRefetch {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), jwksTimeout)
	defer cancel()
	j.updateLocked(ctx, v)
}

// fetch gets and parses the JWKS.
func (j *jwksSource) fetch(ctx context.Context) (keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS %s: %w", j.url, err)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: JWKS %s: HTTP %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS %s: %w", j.url, err)
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("auth: JWKS %s: over %d bytes", j.url, maxJWKSBody)
	}
	return parseJWKS(body)
}

// jwk is one key of a JWKS, the members pulse reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads the signing keys of a JWKS. Keys for encryption, of
// other types or curves, or declared for another algorithm are left out;
// a set left with none is an error.
func parseJWKS(data []byte) (keySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	keys := keySet{}
	for _, k := range doc.Keys {
		if _, dup := keys[k.Kid]; dup || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub, err := k.public()
		if err != nil || keys.put(k.Kid, pub) != nil || (k.Alg != "" && k.Alg != keys[k.Kid].alg) {
			delete(keys, k.Kid)
			continue
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: JWKS holds no usable signing key")
	}
	return keys, keys.settle()
}

// public decodes the key's public half.
func (k jwk) public() (any, error) {
	switch {
	case k.Kty == "RSA":
		n, e := decodeInt(k.N), decodeInt(k.E)
		if n == nil || e == nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("bad RSA key")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case k.Kty == "EC" && k.Crv == "P-256":
		x, y := decodeBytes(k.X), decodeBytes(k.Y)
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad P-256 key")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		x := decodeBytes(k.X)
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q %q", k.Kty, k.Crv)
}

func decodeBytes(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func decodeInt(s string) *big.Int {
	b := decodeBytes(s)
	if len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}
