package wire

import "encoding/json"

// Client requests. Each may carry an ID, which the answer repeats.

// Hello names the client for presence, may continue an earlier
// connection's session by presenting its token, and may present the
// signed token (Token) that identifies its user on a server that requires
// one. Answered with an Ack carrying Session, Member and, for a token,
// User.
type Hello struct {
	ID      uint64          `json:"id,omitempty"`
	Client  string          `json:"client,omitempty"`
	Info    json.RawMessage `json:"info,omitempty"`
	Session string          `json:"session,omitempty"`
	Token   string          `json:"token,omitempty"`
}

// Refresh replaces the connection's signed token with a newer one before
// the old one expires. The new token must name the same user. Answered
// with an Ack.
type Refresh struct {
	ID    uint64 `json:"id,omitempty"`
	Token string `json:"token"`
}

// Subscribe asks for a channel's publications, and with Since for those
// after a position first. Answered with Subscribed.
type Subscribe struct {
	ID       uint64    `json:"id,omitempty"`
	Channel  string    `json:"channel"`
	Since    *Position `json:"since,omitempty"`
	Presence bool      `json:"presence,omitempty"`
}

// Unsubscribe ends a subscription. Answered with an Ack.
type Unsubscribe struct {
	ID      uint64 `json:"id,omitempty"`
	Channel string `json:"channel"`
}

// Publish appends Data to a channel, once per Key. Answered with an Ack
// carrying the publication's position.
type Publish struct {
	ID      uint64          `json:"id,omitempty"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"key,omitempty"`
}

// PresenceQuery asks who is present in a channel. Answered with Presence.
type PresenceQuery struct {
	ID      uint64 `json:"id,omitempty"`
	Channel string `json:"channel"`
}

// Server messages.

// Welcome is the first message of every connection: the session and the
// liveness rule the client should hold the server to.
type Welcome struct {
	Session string `json:"session"`
	Member  string `json:"member_id"`
	// User is the user a token presented at the upgrade named; "" when
	// none was presented.
	User       string `json:"user,omitempty"`
	IntervalMS int64  `json:"interval_ms"`
	TimeoutMS  int64  `json:"timeout_ms"`
}

// Subscribed answers a Subscribe. Recovered is set only when the request
// had Since: false means the missed publications are lost.
type Subscribed struct {
	ID        uint64   `json:"id,omitempty"`
	Channel   string   `json:"channel"`
	Position  Position `json:"position"`
	Recovered *bool    `json:"recovered,omitempty"`
}

// Message is one live publication.
type Message struct {
	Channel string `json:"channel"`
	Publication
}

// Batch is replayed history, oldest first.
type Batch struct {
	Channel      string        `json:"channel"`
	Publications []Publication `json:"publications"`
}

// Ack answers a request that succeeded: a Publish (Pos, Duplicate), a
// Hello (Session, Member, and User once a token named one), a Refresh or
// an Unsubscribe (ID only).
type Ack struct {
	ID        uint64    `json:"id,omitempty"`
	Pos       *Position `json:"pos,omitempty"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Session   string    `json:"session,omitempty"`
	Member    string    `json:"member_id,omitempty"`
	User      string    `json:"user,omitempty"`
}

// Error answers a request that failed, with one of the Code constants.
// RetryAfterMS, for CodeRateLimited, says when the request may succeed.
type Error struct {
	ID           uint64 `json:"id,omitempty"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// Error codes.
const (
	CodeBadRequest    = "bad_request"    // malformed JSON or a missing or invalid field
	CodeUnknownType   = "unknown_type"   // a type this server does not know
	CodeForbidden     = "forbidden"      // not allowed to do this in this channel
	CodeUnauthorized  = "unauthorized"   // no valid token yet, or a token refused
	CodeNotSubscribed = "not_subscribed" // unsubscribe of a channel not subscribed
	CodeTooMany       = "too_many"       // over a limit: subscriptions, requests in flight
	CodeRateLimited   = "rate_limited"   // publishing faster than allowed; retry after retry_after_ms
	CodeUnavailable   = "unavailable"    // the broker failed or is too slow; retry later
)

// Presence answers a PresenceQuery.
type Presence struct {
	ID      uint64   `json:"id,omitempty"`
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

// Join and Leave tell a channel's members who came and went.
type (
	Join  MemberEvent
	Leave MemberEvent
)

// MemberEvent is the body of Join and Leave.
type MemberEvent struct {
	Channel string `json:"channel"`
	Member  Member `json:"member"`
}

// Ping and Pong are the app-level heartbeat, in either direction.
type (
	Ping struct{}
	Pong struct{}
)

func (Hello) MsgType() string         { return TypeHello }
func (Refresh) MsgType() string       { return TypeRefresh }
func (Subscribe) MsgType() string     { return TypeSubscribe }
func (Unsubscribe) MsgType() string   { return TypeUnsubscribe }
func (Publish) MsgType() string       { return TypePublish }
func (PresenceQuery) MsgType() string { return TypePresence }
func (Welcome) MsgType() string       { return TypeWelcome }
func (Subscribed) MsgType() string    { return TypeSubscribed }
func (Message) MsgType() string       { return TypeMessage }
func (Batch) MsgType() string         { return TypeBatch }
func (Ack) MsgType() string           { return TypeAck }
func (Error) MsgType() string         { return TypeError }
func (Presence) MsgType() string      { return TypePresence }
func (Join) MsgType() string          { return TypeJoin }
func (Leave) MsgType() string         { return TypeLeave }
func (Ping) MsgType() string          { return TypePing }
func (Pong) MsgType() string          { return TypePong }

// Request is a client request that carries an ID: every request but Ping
// and Pong. Its answer repeats RequestID.
type Request interface {
	Msg
	RequestID() uint64
}

// ChannelRequest is a request about one channel: Subscribe, Unsubscribe,
// Publish and PresenceQuery.
type ChannelRequest interface {
	Request
	ChannelName() string
}

func (m Hello) RequestID() uint64         { return m.ID }
func (m Refresh) RequestID() uint64       { return m.ID }
func (m Subscribe) RequestID() uint64     { return m.ID }
func (m Unsubscribe) RequestID() uint64   { return m.ID }
func (m Publish) RequestID() uint64       { return m.ID }
func (m PresenceQuery) RequestID() uint64 { return m.ID }

func (m Subscribe) ChannelName() string     { return m.Channel }
func (m Unsubscribe) ChannelName() string   { return m.Channel }
func (m Publish) ChannelName() string       { return m.Channel }
func (m PresenceQuery) ChannelName() string { return m.Channel }
