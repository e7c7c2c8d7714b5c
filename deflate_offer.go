package pulse

import (
	"net/http"
	"strings"
)

// Negotiation of permessage-deflate (RFC 7692 section 7), one function
// for both engines. The server accepts the first offer it can honour and
// answers every accepted offer alike, with deflateResponse: no context
// takeover in either direction, so neither side keeps a window between
// messages. gorilla/websocket writes that same answer (its Upgrader with
// EnableCompression), so both engines keep upgrading through gorilla.
//
// An offer is declined, and the next one tried, when it has a parameter
// that is unknown, repeated, or has a bad value (RFC 7692 7.1), and when
// it has server_max_window_bits: accepting it would need the parameter in
// the answer, and Go's compress/flate always uses a 32 KiB window (15
// bits). Browsers do not send it. client_max_window_bits, with or without
// a value, is accepted and left out of the answer: the server inflates
// with a 32 KiB window, which reads any smaller one.
const deflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// extension is one offer of a Sec-WebSocket-Extensions header.
type extension struct {
	name   string
	params []extParam
}

type extParam struct {
	name, value string
	valued      bool // "name=value", not just "name"
}

// negotiateDeflate reports whether h offers permessage-deflate in a form
// the server accepts with deflateResponse.
func negotiateDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for _, ext := range parseExtensions(v) {
			if acceptableDeflate(ext) {
				return true
			}
		}
	}
	return false
}

// acceptableDeflate reports whether the server can honour a
// permessage-deflate offer (RFC 7692 7.1) with deflateResponse.
func acceptableDeflate(ext extension) bool {
	if ext.name != "permessage-deflate" {
		return false
	}
	seen := make(map[string]bool, len(ext.params))
	for _, p := range ext.params {
		if seen[p.name] {
			return false // 7.1: a parameter given twice declines the offer
		}
		seen[p.name] = true
		switch p.name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.valued {
				return false
			}
		case "client_max_window_bits":
			if p.valued && !windowBits(p.value) {
				return false
			}
		default: // server_max_window_bits (see above) and unknown parameters
			return false
		}
	}
	return true
}

// windowBits reports whether v is a window size RFC 7692 allows: 8 to 15,
// in decimal without a leading zero.
func windowBits(v string) bool {
	return len(v) == 1 && v >= "8" && v <= "9" || len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5'
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
