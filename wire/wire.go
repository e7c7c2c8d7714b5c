// Package wire holds the pulse.v1 messages, as PROTOCOL.md describes them,
// for both ends: the hub encodes what the Go client decodes and the other
// way round, so a field renamed on one side is a compile error on the
// other. It uses the standard library only.
//
// Every message is a JSON object whose "type" names it. The types here
// carry no Type field: Encode writes the name that the value's MsgType
// returns, and Decode chooses the type by it. A client's request may carry
// an "id" that the server's answer repeats: such requests are a Request,
// and those about one channel a ChannelRequest.
package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// Message type names. The client sends hello, refresh, subscribe,
// unsubscribe, publish and presence (a query); the server sends the rest, and presence
// (the answer). ping and pong go both ways.
const (
	TypeHello       = "hello"
	TypeRefresh     = "refresh"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePublish     = "publish"
	TypePresence    = "presence"
	TypeWelcome     = "welcome"
	TypeSubscribed  = "subscribed"
	TypeMessage     = "message"
	TypeBatch       = "batch"
	TypeAck         = "ack"
	TypeError       = "error"
	TypeJoin        = "join"
	TypeLeave       = "leave"
	TypePing        = "ping"
	TypePong        = "pong"
)

// Position is where a publication sits in its channel's stream. Offset
// counts the publications of one Epoch from 1, without gaps. Epoch names
// one life of the stream and changes whenever its history may have been
// lost (the in-memory broker restarted, for one): a position of
// another epoch cannot be resumed from, since what came after it is
// unknown. The zero Position means "no position".
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// Publication is one message of a channel as a client receives it, alone
// in a Message or among the publications of a Batch.
type Publication struct {
	Pos  Position        `json:"pos"`
	Data json.RawMessage `json:"data"`
	// From is the publishing client's member id, set by the server; ""
	// when the server itself published.
	From string `json:"from,omitempty"`
}

// Member is one session present in a channel, as clients see it.
type Member struct {
	ID     string          `json:"id"`             // the session's public member id
	User   string          `json:"user,omitempty"` // the user its token named; "" if anonymous
	Client string          `json:"client"`         // the name the client gave, not unique
	Info   json.RawMessage `json:"info,omitempty"` // what the client chose to share
}

// PublishResult says where a publish landed.
type PublishResult struct {
	Pos       Position
	Duplicate bool // the key was seen within the dedup window: nothing was appended
}

// Liveness returns the rule a welcome states, or false if it states none.
func (w Welcome) Liveness() (interval, timeout time.Duration, ok bool) {
	interval = time.Duration(w.IntervalMS) * time.Millisecond
	timeout = time.Duration(w.TimeoutMS) * time.Millisecond
	return interval, timeout, interval > 0 && timeout > 0
}

// Msg is any pulse.v1 message: its MsgType is the "type" it travels under.
type Msg interface {
	MsgType() string
}

// Encode marshals m as a JSON object whose first member is its "type".
// The messages are plain structs, so only a json.RawMessage field holding
// invalid JSON can fail; callers check data where it enters.
func Encode(m Msg) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", m.MsgType(), err)
	}
	head := `{"type":"` + m.MsgType() + `"`
	if len(body) == 2 { // {}
		return append([]byte(head), '}'), nil
	}
	out := make([]byte, 0, len(head)+len(body))
	out = append(out, head...)
	out = append(out, ',')
	return append(out, body[1:]...), nil
}

// MustEncode is Encode for messages made only of values that always
// marshal, such as those the server builds from checked data.
func MustEncode(m Msg) []byte {
	data, err := Encode(m)
	if err != nil {
		panic(err)
	}
	return data
}
