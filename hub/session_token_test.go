package hub

import "testing"

// Session ids are well formed, and unique within a hub and across hubs.
func TestSessionIDsUnique(t *testing.T) {
	seen := make(map[string]bool)
	for _, src := range []*idSource{newIDSource(), newIDSource()} {
		for range 1000 {
			token, owner := src.sessionIDs()
			if !validToken(token) || len(owner) != 2*ownerBytes {
				t.Fatalf("token %q owner %q: malformed", token, owner)
			}
			if seen[token] || seen[owner] {
				t.Fatalf("token %q or owner %q seen before", token, owner)
			}
			seen[token], seen[owner] = true, true
		}
	}
}
