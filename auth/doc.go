// Package auth verifies the JSON Web Tokens that identify pulse clients:
// a Verifier is the hub.Verifier of hub.Options, and pulse serve builds
// one from --jwt-secret or --jwt-keys.
//
// NewHMAC verifies HS256 tokens with a shared secret; NewKeys verifies
// RS256, ES256 and EdDSA tokens with the public keys of a PEM file,
// chosen by the token's "kid"; NewJWKS does the same with the keys an
// identity provider publishes at a URL, kept fresh by Run. Every token goes through golang-jwt's
// parser, held to the algorithms its keys allow (never "none"), with an
// expiry required and a small leeway for clock skew; claims are read only
// from a token that passed.
//
// The claims pulse reads: "sub" (required, the user id), "exp"
// (required), "channels" and "publish" (arrays of glob patterns of the
// channels the user may subscribe and publish to; "*" matches any run of
// characters; absent means none). Every claim reaches the hub's
// Authorize in hub.Peer.Claims. PROTOCOL.md, section "Identity", has
// the whole contract.
package auth
