package hub

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"sync"
)

// Session tokens and owner ids come from one ChaCha8 generator per hub,
// seeded from crypto/rand: as strong, and without a getrandom call per
// connection, whose large frame also grew each new connection's goroutine
// stack (some 6% of an upgrade's CPU).

// idSource makes the random ids of a hub's sessions. Safe for concurrent use.
type idSource struct {
	mu  sync.Mutex // guards gen
	gen *rand.ChaCha8
}

func newIDSource() *idSource {
	var seed [32]byte
	crand.Read(seed[:]) // never fails
	return &idSource{gen: rand.NewChaCha8(seed)}
}

// Lengths of a session's ids, in random bytes.
const (
	tokenBytes = 16 // the session token: 32 hex digits
	ownerBytes = 8  // the owner of its memberships: 16 hex digits
)

// sessionIDs returns a new session token and owner id, in one string.
func (src *idSource) sessionIDs() (token, owner string) {
	var b [tokenBytes + ownerBytes]byte
	src.mu.Lock()
	src.gen.Read(b[:]) // never fails
	src.mu.Unlock()
	both := hex.EncodeToString(b[:])
	return both[:2*tokenBytes], both[2*tokenBytes:]
}
