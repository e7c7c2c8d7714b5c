package client

import (
	"fmt"

	"github.com/pulse-go/pulse/wire"
)

// Position is where a publication sits in its channel: see wire.Position.
// A new Epoch means the channel's history was lost; a position of another
// epoch cannot be resumed from. The zero Position means "none".
type Position = wire.Position

// Member is a session present in a channel.
type Member = wire.Member

// PublishResult says where a publish landed.
type PublishResult = wire.PublishResult

// after reports whether p comes after q in the same epoch, or q is of
// another epoch (a new life of the stream).
func after(p, q Position) bool {
	return p.Epoch != q.Epoch || p.Offset > q.Offset
}

// Message is one publication delivered to the application: its Pos, Data
// and From (the publisher's member id, set by the server; "" for the
// server) come from the wire.
type Message struct {
	Channel string
	wire.Publication
	Replayed bool // it came from history, after a resume
}

// ServerError is an error message the server answered a request with.
type ServerError struct {
	Code    string // one of wire's Code constants: bad_request, forbidden, too_many, unavailable, ...
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("client: server refused: %s: %s", e.Code, e.Message)
}

var (
	pingFrame = wire.MustEncode(wire.Ping{})
	pongFrame = wire.MustEncode(wire.Pong{})
)
