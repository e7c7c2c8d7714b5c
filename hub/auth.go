package hub

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pulse-go/pulse"
)

// Identity is who a verified token says a client is, and what it may do.
// The hub reads it only from Verifier.Verify, which checks the token's
// signature and expiry before it returns one.
type Identity struct {
	// User is the user id (a JWT's "sub"); never empty.
	User string
	// Expires is when the token stops being valid: the connection is
	// closed with pulse.CloseTokenExpired then, unless a refresh came.
	Expires time.Time
	// Channels and Publish are glob patterns of the channels the user may
	// subscribe to (and ask presence of) and publish to; "*" matches any
	// run of characters. None means nothing is allowed.
	Channels []string
	Publish  []string
	// Claims are all of the token's claims, for Options.Authorize.
	Claims map[string]any
}

// Verifier checks a signed token and returns the identity it proves.
// Package auth verifies JWTs. Verify must be safe for concurrent use; its
// error's text is shown to the client, so it should say what is wrong
// with the token (expired, bad signature) and nothing secret. An error
// wrapping ErrTokenExpired means the token was valid once.
type Verifier interface {
	Verify(token string) (Identity, error)
}

// ErrTokenExpired is wrapped by a Verifier's error for a token past its
// expiry: a client presenting it in a hello is closed with
// pulse.CloseTokenExpired, so that it fetches a new one, rather than with
// pulse.CloseUnauthorized.
var ErrTokenExpired = errors.New("token expired")

// maxToken bounds a token, in bytes: a JWT of a few claims is well under
// a kilobyte.
const maxToken = 8192

// errNoToken refuses a plain WebSocket client that presents no token.
var errNoToken = errors.New("a token is required: ?token= or Authorization: Bearer")

// upgradeToken returns the token of an upgrade request: ?token= or an
// Authorization: Bearer header, and whether one was presented at all.
func upgradeToken(r *http.Request) (string, bool) {
	if q := r.URL.Query(); q.Has("token") {
		return q.Get("token"), true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token), true
		}
	}
	return "", false
}

// speaksPulse reports whether an upgrade request offers the pulse.v1
// subprotocol.
func speaksPulse(r *http.Request) bool {
	for _, h := range r.Header.Values("Sec-Websocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if strings.TrimSpace(p) == pulse.Subprotocol {
				return true
			}
		}
	}
	return false
}

// authenticate verifies the token of an upgrade request, for a hub with a
// Verifier. A token presented and refused, or none from a plain client,
// is a 401; a pulse.v1 client without one gets a nil identity and must
// send it in its hello.
func (h *Hub) authenticate(r *http.Request) (*Identity, error) {
	token, presented := upgradeToken(r)
	if !presented {
		if speaksPulse(r) {
			return nil, nil
		}
		return nil, unauthorized(errNoToken)
	}
	id, err := h.verify(token)
	if err != nil {
		return nil, unauthorized(err)
	}
	return id, nil
}

// verify checks a token with the hub's Verifier.
func (h *Hub) verify(token string) (*Identity, error) {
	if token == "" {
		return nil, errors.New("empty token")
	}
	if len(token) > maxToken {
		return nil, fmt.Errorf("token over %d bytes", maxToken)
	}
	id, err := h.opts.Verifier.Verify(token)
	if err != nil {
		return nil, err
	}
	if id.User == "" {
		return nil, errors.New("token names no user (sub)")
	}
	return &id, nil
}

func unauthorized(err error) *pulse.HTTPError {
	return &pulse.HTTPError{Status: http.StatusUnauthorized, Reason: "unauthorized: " + err.Error()}
}

// allows reports whether the identity's patterns let it take action in
// channel.
func (id *Identity) allows(action Action, channel string) bool {
	patterns := id.Channels
	if action == ActionPublish {
		patterns = id.Publish
	}
	return slices.ContainsFunc(patterns, func(p string) bool { return Match(p, channel) })
}

// Match reports whether name matches the glob pattern, in which "*"
// matches any run of characters (none included) and every other
// character only itself. It runs in O(len(pattern)*len(name)) at worst.
func Match(pattern, name string) bool {
	// The classic greedy walk: on a mismatch, let the last star take one
	// more byte and retry from there.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			mark++
			p, n = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
