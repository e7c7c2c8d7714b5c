package pulse

import (
	"cmp"
	"net/http"
	"strconv"
	"strings"
)

// Negotiation of permessage-deflate (RFC 7692 section 7), one function
// for both engines. The server accepts the first offer it can honour and
// answers it with deflateResponse, no context takeover in either
// direction, so neither side keeps a window between messages; an offer
// with server_max_window_bits=N (8 to 15) gets the same parameter back
// in the answer, and the server's messages then keep their back
// references within 2^N bytes (deflate). gorilla/websocket's compressing
// Upgrader writes deflateResponse itself; a longer answer replaces it as
// the connection takes the 101 response (heldConn.Write, upgrade.go).
//
// An offer is declined, and the next one tried, when it has a parameter
// that is unknown, repeated, or has a bad value (RFC 7692 7.1; a bare
// server_max_window_bits is one). client_max_window_bits, with or without
// a value, is accepted and left out of the answer: the server inflates
// with a 32 KiB window, which reads any smaller one.
const deflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// deflateBits is the window, in bits, that the server's compressed
// messages keep to on a connection: 8 to 15 (maxWindowBits unless the
// client offered server_max_window_bits); 0 when permessage-deflate was
// not negotiated.
type deflateBits uint8

// Window sizes of RFC 7692 7.1.2, in bits. Go's compress/flate compresses
// with a window of maxWindowBits.
const (
	minWindowBits = 8
	maxWindowBits = 15
)

// extension is one offer of a Sec-WebSocket-Extensions header.
type extension struct {
	name   string
	params []extParam
}

type extParam struct {
	name, value string
	valued      bool // "name=value", not just "name"
}

// negotiateDeflate returns the answer to the first permessage-deflate
// offer of h that the server accepts, and the window its messages keep
// to; "" and 0 when it accepts none.
func negotiateDeflate(h http.Header) (answer string, window deflateBits) {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for _, ext := range parseExtensions(v) {
			if bits, ok := acceptableDeflate(ext); ok {
				return deflateAnswer(bits), cmp.Or(bits, maxWindowBits)
			}
		}
	}
	return "", 0
}

// deflateAnswer is the answer to an accepted offer whose
// server_max_window_bits was bits (0: none): RFC 7692 7.1.2.1 wants the
// parameter back, at the same or a smaller value; it is the same.
func deflateAnswer(bits deflateBits) string {
	if bits == 0 {
		return deflateResponse
	}
	return deflateResponse + "; server_max_window_bits=" + strconv.Itoa(int(bits))
}

// acceptableDeflate reports whether the server can honour a
// permessage-deflate offer (RFC 7692 7.1), and returns its
// server_max_window_bits (0 when it has none).
func acceptableDeflate(ext extension) (serverBits deflateBits, ok bool) {
	if ext.name != "permessage-deflate" {
		return 0, false
	}
	seen := make(map[string]bool, len(ext.params))
	for _, p := range ext.params {
		if seen[p.name] {
			return 0, false // 7.1: a parameter given twice declines the offer
		}
		seen[p.name] = true
		switch p.name {
		case "server_no_context_takeover", "client_no_context_takeover":
			ok = !p.valued
		case "client_max_window_bits":
			ok = !p.valued || windowBits(p.value) > 0
		case "server_max_window_bits":
			serverBits = windowBits(p.value) // 7.1.2.1: the value is required
			ok = p.valued && serverBits > 0
		default:
			ok = false // an unknown parameter
		}
		if !ok {
			return 0, false
		}
	}
	return serverBits, true
}

// windowBits returns the window size v gives, when it is one RFC 7692
// allows: 8 to 15, in decimal without a leading zero; 0 otherwise.
func windowBits(v string) deflateBits {
	if len(v) == 1 && v >= "8" && v <= "9" || len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5' {
		n, _ := strconv.Atoi(v) // two digits at most
		return deflateBits(n)
	}
	return 0
}

// parseExtensions parses one header value of extension offers (RFC 6455
// 9.1: extension *( ";" param [ "=" (token | quoted-string) ] ), comma
// separated). It returns the offers before the first malformed one, as
// gorilla's own parser does, and is no more lenient than it: an offer
// accepted here is one gorilla's Upgrader sees too.
func parseExtensions(s string) []extension {
	var exts []extension
	for {
		var ext extension
		ext.name, s = httpToken(skipSpace(s))
		if ext.name == "" {
			return exts
		}
		for s = skipSpace(s); strings.HasPrefix(s, ";"); s = skipSpace(s) {
			var p extParam
			if p.name, s = httpToken(skipSpace(s[1:])); p.name == "" {
				return exts
			}
			if s = skipSpace(s); strings.HasPrefix(s, "=") {
				p.valued = true
				var ok bool
				if p.value, s, ok = tokenOrQuoted(skipSpace(s[1:])); !ok {
					return exts
				}
			}
			ext.params = append(ext.params, p)
		}
		if s != "" && s[0] != ',' {
			return exts
		}
		exts = append(exts, ext)
		if s == "" {
			return exts
		}
		s = s[1:]
	}
}

func skipSpace(s string) string { return strings.TrimLeft(s, " \t") }

// httpToken splits s after its leading RFC 7230 token.
func httpToken(s string) (tok, rest string) {
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// tokenOrQuoted splits s after a token or a quoted string without escapes
// (an escape makes it malformed here: no value of RFC 7692 needs one).
func tokenOrQuoted(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		value, rest = httpToken(s)
		return value, rest, value != ""
	}
	end := strings.IndexAny(s[1:], `"\`)
	if end < 0 || s[1+end] != '"' {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
