package client

import (
	"encoding/json"
	"fmt"
)

// Position is where a publication sits in its channel: Offset counts the
// publications of one Epoch from 1. A new Epoch means the channel's history
// was lost; a position of another epoch cannot be resumed from. The zero
// Position means "none".
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// after reports whether p comes after q in the same epoch, or q is of
// another epoch (a new life of the stream).
func (p Position) after(q Position) bool {
	return p.Epoch != q.Epoch || p.Offset > q.Offset
}

// Message is one publication delivered to the application.
type Message struct {
	Channel  string
	Pos      Position
	Data     json.RawMessage
	Replayed bool   // it came from history, after a resume
	From     string // the publishing client's member id, set by the server; "" for the server
}

// Member is a connection present in a channel.
type Member struct {
	ID     string          `json:"id"`
	Client string          `json:"client"`
	Info   json.RawMessage `json:"info,omitempty"`
}

// ServerError is an error message the server answered a request with.
type ServerError struct {
	Code    string // bad_request, forbidden, too_many, unavailable, ...
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("client: server refused: %s: %s", e.Code, e.Message)
}

// request is every message the client sends.
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

// reply is every message the server sends; which fields are set depends
// on Type.
type reply struct {
	Type         string          `json:"type"`
	ID           uint64          `json:"id"`
	Session      string          `json:"session"`
	MemberID     string          `json:"member_id"`
	IntervalMS   int64           `json:"interval_ms"`
	TimeoutMS    int64           `json:"timeout_ms"`
	Channel      string          `json:"channel"`
	Pos          Position        `json:"pos"`
	Position     Position        `json:"position"`
	Recovered    *bool           `json:"recovered"`
	Data         json.RawMessage `json:"data"`
	From         string          `json:"from"`
	Publications []publication   `json:"publications"`
	Duplicate    bool            `json:"duplicate"`
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Members      []Member        `json:"members"`
	Member       Member          `json:"member"`
}

type publication struct {
	Pos  Position        `json:"pos"`
	Data json.RawMessage `json:"data"`
	From string          `json:"from"`
}

var (
	pingFrame = []byte(`{"type":"ping"}`)
	pongFrame = []byte(`{"type":"pong"}`)
)

func encode(r request) []byte {
	data, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("client: encode %s: %v", r.Type, err)) // RawMessage fields are checked at the API
	}
	return data
}
