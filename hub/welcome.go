package hub

import (
	"strconv"
	"unicode/utf8"

	"github.com/pulse-go/pulse/wire"
)

// encodeWelcome is wire.MustEncode(w), written by hand. The welcome is
// made on the upgrade's goroutine, deep in net/http's handler, where
// encoding/json's frames outgrew the goroutine's first stack: copying it
// cost some 4% of an upgrade's CPU time. TestEncodeWelcome and
// FuzzEncodeWelcome hold it to wire.Encode.
func encodeWelcome(w wire.Welcome) []byte {
	const fixed = 100 // the names, the type and two int64s, roughly
	b := make([]byte, 0, fixed+len(w.Session)+len(w.Member)+len(w.User))
	b = append(b, `{"type":"`+wire.TypeWelcome+`","session":`...)
	b = appendJSONString(b, w.Session)
	b = append(b, `,"member_id":`...)
	b = appendJSONString(b, w.Member)
	if w.User != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, w.User)
	}
	b = append(b, `,"interval_ms":`...)
	b = strconv.AppendInt(b, w.IntervalMS, 10)
	b = append(b, `,"timeout_ms":`...)
	b = strconv.AppendInt(b, w.TimeoutMS, 10)
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json quotes a string:
// HTML-safe, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			b = appendJSONByte(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONByte appends the ASCII byte c as it appears inside a JSON string.
func appendJSONByte(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case '<', '>', '&':
		return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	}
	if c < 0x20 {
		return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(b, c)
}
