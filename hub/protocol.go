package hub

import (
	"errors"
	"fmt"
	"time"
	"unicode"

	"github.com/pulse-go/pulse/wire"
)

// The pulse.v1 messages are the types of package wire; this file decodes
// and checks what clients send.

// maxChannelName is the longest channel name, in bytes.
const maxChannelName = 200

// protocolError is a request the server answers with an error message.
type protocolError struct {
	code       string // one of wire's Code constants
	message    string
	retryAfter time.Duration // for CodeRateLimited
}

func (e *protocolError) Error() string { return e.code + ": " + e.message }

func badRequest(format string, args ...any) *protocolError {
	return &protocolError{code: wire.CodeBadRequest, message: fmt.Sprintf(format, args...)}
}

// decodeRequest parses and checks one client message. On an error it still
// returns the request's id when it could read one, for the error's answer.
func decodeRequest(data []byte) (wire.Msg, *protocolError) {
	m, err := wire.DecodeRequest(data)
	var unknown *wire.UnknownTypeError
	switch {
	case errors.As(err, &unknown):
		return nil, &protocolError{code: wire.CodeUnknownType, message: err.Error()}
	case err != nil:
		return nil, badRequest("%v", err)
	}
	return m, check(m)
}

// check verifies the fields a request's type requires.
func check(m wire.Msg) *protocolError {
	if c, ok := m.(wire.ChannelRequest); ok {
		if err := checkChannel(c.ChannelName()); err != nil {
			return err
		}
	}
	switch m := m.(type) {
	case wire.Refresh:
		if m.Token == "" {
			return badRequest("refresh needs a token")
		}
	case wire.Publish:
		return checkPublish(m.Data, m.Key)
	}
	return nil
}

// checkPublish refuses what no broker would publish.
func checkPublish(data []byte, key string) *protocolError {
	if len(data) == 0 {
		return badRequest("publish needs data")
	}
	if len(key) > MaxKeyLength {
		return badRequest("idempotency key of %d bytes: at most %d", len(key), MaxKeyLength)
	}
	return nil
}

// requestID is the id of a request, which its answer repeats, or 0.
func requestID(m wire.Msg) uint64 {
	if r, ok := m.(wire.Request); ok {
		return r.RequestID()
	}
	return 0
}

// checkChannel accepts 1 to 200 bytes of printable, non-space UTF-8.
func checkChannel(name string) *protocolError {
	if name == "" {
		return badRequest("missing channel")
	}
	if len(name) > maxChannelName {
		return badRequest("channel name longer than %d bytes", maxChannelName)
	}
	for _, r := range name {
		if r == '\uFFFD' || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return badRequest("channel name %q has a space, control or invalid character", name)
		}
	}
	return nil
}

var errNoPresence = errors.New("hub: the broker keeps no presence")
