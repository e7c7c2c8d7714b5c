package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoType is the error of a message without a "type".
var ErrNoType = errors.New("wire: missing type")

// UnknownTypeError is the error of a message whose "type" the decoder does
// not know; a server answers it with CodeUnknownType.
type UnknownTypeError struct {
	Type string
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("wire: unknown message type %q", e.Type)
}

type decoder func(data []byte) (Msg, error)

// decodeAs unmarshals data, whose type is already known, into a T.
func decodeAs[T Msg](data []byte) (Msg, error) {
	var m T
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("wire: malformed %s: %w", m.MsgType(), err)
	}
	return m, nil
}

var requests = map[string]decoder{
	TypeHello:       decodeAs[Hello],
	TypeRefresh:     decodeAs[Refresh],
	TypeSubscribe:   decodeAs[Subscribe],
	TypeUnsubscribe: decodeAs[Unsubscribe],
	TypePublish:     decodeAs[Publish],
	TypePresence:    decodeAs[PresenceQuery],
	TypePing:        decodeAs[Ping],
	TypePong:        decodeAs[Pong],
}

var serverMessages = map[string]decoder{
	TypeWelcome:    decodeAs[Welcome],
	TypeSubscribed: decodeAs[Subscribed],
	TypeMessage:    decodeAs[Message],
	TypeBatch:      decodeAs[Batch],
	TypeAck:        decodeAs[Ack],
	TypeError:      decodeAs[Error],
	TypePresence:   decodeAs[Presence],
	TypeJoin:       decodeAs[Join],
	TypeLeave:      decodeAs[Leave],
	TypePing:       decodeAs[Ping],
	TypePong:       decodeAs[Pong],
}

// DecodeRequest parses a message a client sent: a Hello, Refresh, Subscribe,
// Unsubscribe, Publish, PresenceQuery, Ping or Pong (values, not
// pointers). It checks the JSON, not the fields' values.
func DecodeRequest(data []byte) (Msg, error) { return decode(data, requests) }

// DecodeServer parses a message a server sent: a Welcome, Subscribed,
// Message, Batch, Ack, Error, Presence, Join, Leave, Ping or Pong.
func DecodeServer(data []byte) (Msg, error) { return decode(data, serverMessages) }

func decode(data []byte, decoders map[string]decoder) (Msg, error) {
	var env struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("wire: malformed JSON: %w", err)
	}
	if env.Type == "" {
		return nil, ErrNoType
	}
	dec := decoders[env.Type]
	if dec == nil {
		return nil, &UnknownTypeError{Type: env.Type}
	}
	return dec(data)
}
