package auth

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pulse-go/pulse/hub"
)

// Options configures a Verifier. Nil means defaults.
type Options struct {
	// Leeway is the clock skew allowed on a token's "exp", "nbf" and
	// "iat". Zero means 5s.
	Leeway time.Duration
	// Issuer, if set, must be the token's "iss". Empty means any.
	Issuer string
	// Audience, if set, must be among the token's "aud". Empty means any.
	Audience string
	// Refresh is how often a NewJWKS Verifier's Run fetches the key set
	// again. Zero means 5m.
	Refresh time.Duration
	// HTTPClient fetches a JWKS. Nil means a client with a 10s timeout.
	HTTPClient *http.Client
}

// DefaultLeeway is the default of Options.Leeway.
const DefaultLeeway = 5 * time.Second

// MinSecretLength is the shortest HS256 secret NewHMAC takes, in bytes:
// the 256 bits of the hash, so that the secret cannot be guessed faster
// than the signature forged.
const MinSecretLength = 32

// Verifier checks signed tokens. It implements hub.Verifier; it is safe
// for concurrent use.
type Verifier struct {
	// Set by the constructor, never changes.
	parser *jwt.Parser
	leeway time.Duration
	jwks   *jwksSource // nil unless made by NewJWKS

	// The keys in force: fixed for NewHMAC and NewKeys, replaced whole by
	// each fetch of a JWKS.
	keys atomic.Pointer[keySet]
}

var _ hub.Verifier = (*Verifier)(nil)

// NewHMAC returns a Verifier of HS256 tokens signed with secret, which
// must be at least MinSecretLength bytes.
func NewHMAC(secret []byte, opts *Options) (*Verifier, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("auth: an HS256 secret needs at least %d bytes, got %d", MinSecretLength, len(secret))
	}
	return newVerifier(keySet{"": {alg: jwt.SigningMethodHS256.Alg(), key: secret}}, nil, opts), nil
}

// NewKeys returns a Verifier of tokens signed with the private halves of
// the public keys in pemData: PEM blocks of type "PUBLIC KEY" (PKIX)
// holding an RSA key of at least MinRSABits (RS256), a P-256 ECDSA key
// (ES256) or an Ed25519 key (EdDSA). Each block names its key id in a
// "kid" header:
//
//	-----BEGIN PUBLIC KEY-----
//	kid: 2026-11
//
//	MCowBQYDK2VwAyEA...
//	-----END PUBLIC KEY-----
//
// A token is verified with the key its "kid" names, and only with that
// key's algorithm. A file of one key may leave out the kid; that key then
// also verifies tokens that name no kid.
func NewKeys(pemData []byte, opts *Options) (*Verifier, error) {
	keys, err := parseKeys(pemData)
	if err != nil {
		return nil, err
	}
	return newVerifier(keys, nil, opts), nil
}

// newVerifier makes a Verifier of keys, held to the algorithms algs (nil
// means those of keys).
func newVerifier(keys keySet, algs []string, opts *Options) *Verifier {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Leeway == 0 {
		o.Leeway = DefaultLeeway
	}
	if algs == nil {
		algs = keys.algorithms()
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(o.Leeway),
		jwt.WithIssuedAt(),
	}
	if o.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, jwt.WithAudience(o.Audience))
	}
	v := &Verifier{parser: jwt.NewParser(popts...), leeway: o.Leeway}
	v.keys.Store(&keys)
	return v
}

// Verify checks token's signature, algorithm and time claims, and returns
// the identity its claims give. An expired token's error wraps
// hub.ErrTokenExpired.
func (v *Verifier) Verify(token string) (hub.Identity, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.lookup); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return hub.Identity{}, hub.ErrTokenExpired
		}
		return hub.Identity{}, err
	}
	return identity(claims, v.leeway)
}

// identity reads the claims of a verified token.
func identity(claims jwt.MapClaims, leeway time.Duration) (hub.Identity, error) {
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return hub.Identity{}, errors.New("token has no subject (sub)")
	}
	exp, _ := claims.GetExpirationTime() // required and checked by the parser
	channels, err := patterns(claims, "channels")
	if err != nil {
		return hub.Identity{}, err
	}
	publish, err := patterns(claims, "publish")
	if err != nil {
		return hub.Identity{}, err
	}
	return hub.Identity{User: sub, Expires: exp.Add(leeway), Channels: channels, Publish: publish, Claims: claims}, nil
}

// patterns reads a claim that lists glob patterns: absent means none.
func patterns(claims jwt.MapClaims, name string) ([]string, error) {
	raw, ok := claims[name]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("token claim %q is not an array of strings", name)
	}
	out := make([]string, len(list))
	for i, p := range list {
		if out[i], ok = p.(string); !ok {
			return nil, fmt.Errorf("token claim %q is not an array of strings", name)
		}
	}
	return out, nil
}
