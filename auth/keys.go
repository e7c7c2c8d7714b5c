package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// key is one verification key and the one algorithm it allows.
type key struct {
	alg string
	key any
}

// keySet holds the keys of a Verifier by key id; the id "" is the key of
// tokens that name none, present only when the set has a single key.
type keySet map[string]key

// MinRSABits is the smallest RSA modulus NewKeys takes.
const MinRSABits = 2048

// parseKeys reads the public keys of a PEM file, as NewKeys describes.
func parseKeys(pemData []byte) (keySet, error) {
	keys := keySet{}
	for rest := pemData; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if err := keys.add(block); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return keys, keys.settle()
}

// settle lets a lone key verify tokens without a kid, and refuses a set
// of several keys in which one has no id.
func (s keySet) settle() error {
	if len(s) == 1 {
		for _, k := range s {
			s[""] = k
		}
		return nil
	}
	if _, ok := s[""]; ok {
		return errors.New(`auth: a set of several keys needs a key id ("kid") on each`)
	}
	return nil
}

// add parses one PEM block into the set.
func (s keySet) add(block *pem.Block) error {
	kid := block.Headers["kid"]
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("auth: PEM block %q: want PUBLIC KEY", block.Type)
	}
	if _, dup := s[kid]; dup {
		return fmt.Errorf("auth: two keys with kid %q", kid)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("auth: key %q: %w", kid, err)
	}
	return s.put(kid, pub)
}

// put adds a public key under kid, with the one algorithm it verifies.
func (s keySet) put(kid string, pub any) error {
	alg, err := algorithm(pub)
	if err != nil {
		return fmt.Errorf("auth: key %q: %w", kid, err)
	}
	s[kid] = key{alg: alg, key: pub}
	return nil
}

// algorithm is the one JWT algorithm a public key verifies.
func algorithm(pub any) (string, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("RSA key of %d bits: at least %d", pub.N.BitLen(), MinRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", errors.New("ECDSA key not on P-256 (ES256)")
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// algorithms lists the algorithms of the set's keys, for the parser.
func (s keySet) algorithms() []string {
	var algs []string
	for _, k := range s {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	slices.Sort(algs)
	return algs
}

// lookup is the parser's key function: the key the token's kid names,
// which must allow the token's algorithm. A kid a JWKS does not hold
// makes it fetched again first (at most every jwksMinRefetch).
func (v *Verifier) lookup(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	s := *v.keys.Load()
	k, ok := s[kid]
	if !ok && kid != "" && v.jwks != nil {
		v.jwks.refetch(v)
		s = *v.keys.Load()
		k, ok = s[kid]
	}
	if !ok && len(s) == 1 {
		k, ok = s[""] // a lone key without an id (an HMAC secret) takes any kid
	}
	if !ok && kid == "" {
		return nil, errors.New("token names no key id (kid)")
	}
	if !ok {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("algorithm %s not allowed for this key", t.Method.Alg())
	}
	return k.key, nil
}
