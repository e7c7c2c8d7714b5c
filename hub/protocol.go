package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
)

// The pulse.v1 messages, as PROTOCOL.md describes them. Every message is a
// JSON object with a "type"; a client's request may carry an "id" that the
// server's answer repeats.

// Client message types.
const (
	typeHello       = "hello"
	typeSubscribe   = "subscribe"
	typeUnsubscribe = "unsubscribe"
	typePublish     = "publish"
	typePresence    = "presence"
)

// maxChannelName is the longest channel name, in bytes.
const maxChannelName = 200

// request is any message a client sends; which fields matter depends on Type.
type request struct {
	Type     string          `json:"type"`
	ID       uint64          `json:"id,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	Since    *Position       `json:"since,omitempty"`
	Presence bool            `json:"presence,omitempty"`
	Key      string          `json:"key,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Client   string          `json:"client,omitempty"`
	Info     json.RawMessage `json:"info,omitempty"`
	Session  string          `json:"session,omitempty"`
}

// Error codes of the error message.
const (
	codeBadRequest    = "bad_request"    // malformed JSON or a missing or invalid field
	codeUnknownType   = "unknown_type"   // a type this server does not know
	codeForbidden     = "forbidden"      // Authorize refused
	codeNotSubscribed = "not_subscribed" // unsubscribe or presence of a channel not subscribed
	codeTooMany       = "too_many"       // over the subscription limit
	codeUnavailable   = "unavailable"    // the broker failed; retry later
)

// protocolError is a request the server answers with an error message.
type protocolError struct {
	code    string
	message string
}

func (e *protocolError) Error() string { return e.code + ": " + e.message }

func badRequest(format string, args ...any) *protocolError {
	return &protocolError{codeBadRequest, fmt.Sprintf(format, args...)}
}

// decodeRequest parses and checks one client message.
func decodeRequest(data []byte) (request, *protocolError) {
	var r request
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return r, badRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return r, badRequest("trailing data after the JSON object")
	}
	return r, r.check()
}

// check verifies the fields r's type requires.
func (r *request) check() *protocolError {
	switch r.Type {
	case typeHello:
		return nil
	case typeSubscribe, typeUnsubscribe, typePresence:
		return checkChannel(r.Channel)
	case typePublish:
		if err := checkChannel(r.Channel); err != nil {
			return err
		}
		if len(r.Data) == 0 {
			return badRequest("publish needs data")
		}
		return nil
	case "":
		return badRequest("missing type")
	}
	return &protocolError{codeUnknownType, fmt.Sprintf("unknown message type %q", r.Type)}
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

// Server messages.

type welcomeMsg struct {
	Type       string `json:"type"` // "welcome"
	Session    string `json:"session"`
	Member     string `json:"member_id"`
	IntervalMS int64  `json:"interval_ms"`
	TimeoutMS  int64  `json:"timeout_ms"`
}

type subscribedMsg struct {
	Type      string   `json:"type"` // "subscribed"
	ID        uint64   `json:"id,omitempty"`
	Channel   string   `json:"channel"`
	Position  Position `json:"position"`
	Recovered *bool    `json:"recovered,omitempty"` // only when the request had since
}

type pubEntry struct {
	Pos  Position        `json:"pos"`
	Data json.RawMessage `json:"data"`
	From string          `json:"from,omitempty"`
}

type messageMsg struct {
	Type    string          `json:"type"` // "message"
	Channel string          `json:"channel"`
	Pos     Position        `json:"pos"`
	Data    json.RawMessage `json:"data"`
	From    string          `json:"from,omitempty"`
}

type batchMsg struct {
	Type         string     `json:"type"` // "batch"
	Channel      string     `json:"channel"`
	Publications []pubEntry `json:"publications"`
}

type ackMsg struct {
	Type      string    `json:"type"` // "ack"
	ID        uint64    `json:"id,omitempty"`
	Pos       *Position `json:"pos,omitempty"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Session   string    `json:"session,omitempty"`   // the answer to a hello
	Member    string    `json:"member_id,omitempty"` // the answer to a hello
}

type errorMsg struct {
	Type    string `json:"type"` // "error"
	ID      uint64 `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type presenceMsg struct {
	Type    string   `json:"type"` // "presence"
	ID      uint64   `json:"id,omitempty"`
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

type memberMsg struct {
	Type    string `json:"type"` // "join" or "leave"
	Channel string `json:"channel"`
	Member  Member `json:"member"`
}

// encode marshals a server message; they are plain structs that always do.
func encode(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("hub: encode %T: %v", v, err))
	}
	return data
}

var errNoPresence = errors.New("hub: the broker keeps no presence")
