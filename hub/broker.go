package hub

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// Position is where a publication sits in its channel's stream: see
// wire.Position, which says what its epoch detects.
type Position = wire.Position

// Publication is one message in a channel's stream.
type Publication struct {
	Channel string
	Pos     Position
	Data    json.RawMessage
	From    string    // the publishing client's member id; "" from the server
	Time    time.Time // when the broker accepted it, on its clock
}

// wire is the publication as clients receive it.
func (p Publication) wire() wire.Publication {
	return wire.Publication{Pos: p.Pos, Data: p.Data, From: p.From}
}

// Member is one session present in a channel, as a broker keeps it.
type Member struct {
	ID     string          // the session's public member id
	User   string          // the user its verified token named; "" if anonymous
	Client string          // the name the client gave, not unique
	Info   json.RawMessage // what the client chose to share
	// Owner names the connection that holds the membership. One member
	// may be held by several connections at once: a duplicated browser
	// tab continues the same session, and a session that comes back on a
	// new connection joins again before its old one is found dead. The
	// member stays present until the last of them leaves. Never sent to
	// clients.
	Owner string
}

// Wire is the member as clients see it, without its Owner.
func (m Member) Wire() wire.Member {
	return wire.Member{ID: m.ID, User: m.User, Client: m.Client, Info: m.Info}
}

// EventType says what an Event carries.
type EventType int

const (
	EventPublication EventType = iota + 1 // Publication is set
	EventJoin                             // Member joined the channel
	EventLeave                            // Member left the channel
	// EventLost says the broker lost events of the channel that its
	// history no longer holds: every subscriber must resume from its last
	// position, and learns recovered:false.
	EventLost
)

// Event is what a subscription receives: a publication, or presence news.
type Event struct {
	Type        EventType
	Publication Publication // for EventPublication
	Member      Member      // for EventJoin and EventLeave
}

// PublishOptions are the optional parts of a publish.
type PublishOptions struct {
	// IdempotencyKey, if set, makes the publish happen once: a publish to
	// the same channel with the same key within the broker's dedup window
	// is not appended again and returns the first one's position. A key
	// is at most MaxKeyLength bytes; a longer one gets ErrKeyTooLong.
	IdempotencyKey string
	// From is the member id of the client that publishes, which the hub
	// sets and subscribers see; empty for server code.
	From string
}

// PublishResult says where a publication landed.
type PublishResult = wire.PublishResult

// Broker stores channel streams and carries their events to subscriptions,
// possibly across several server nodes. The hub owns this interface; the
// in-memory Memory broker is the default, and every implementation must
// pass hubtest.TestBroker. All methods may be called concurrently.
type Broker interface {
	// Publish appends data to channel's stream, within its history bounds,
	// and delivers it to every subscription of channel.
	Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (PublishResult, error)
	// History returns the publications of channel after since, oldest
	// first, and the stream's current top position (the zero offset of the
	// current epoch if it is empty). A zero since returns no publications.
	// If since belongs to another epoch, lies beyond the top, or the
	// publications right after it have left the history, History returns
	// the top and ErrUnrecoverable.
	History(ctx context.Context, channel string, since Position) ([]Publication, Position, error)
	// Subscribe delivers every event of channel that happens after it
	// returns to deliver, one at a time, in the order the broker accepted
	// them (so publications in offset order). deliver must not block and
	// must not call the Broker. Calling unsubscribe stops deliveries; once
	// it returns, deliver is not running and will not be called again.
	Subscribe(ctx context.Context, channel string, deliver func(Event)) (unsubscribe func(), err error)
	// Close releases the broker; later calls return ErrClosed.
	Close() error
}

// PresenceBroker is a Broker that also keeps who is in each channel. The
// hub finds it by type assertion; without it, presence is not offered.
type PresenceBroker interface {
	Broker
	// Join adds m.Owner to the owners of member m.ID in channel, and m
	// becomes the member's description. It delivers an EventJoin to the
	// channel's subscriptions when the member was not present, or when
	// its User, Client or Info changed; a further owner of a member described
	// the same way joins silently.
	Join(ctx context.Context, channel string, m Member) error
	// Leave removes m.Owner from the owners of member m.ID in channel;
	// when none is left, the member leaves and an EventLeave is
	// delivered. A Leave of an owner the member does not have does
	// nothing; a Leave with an empty Owner removes the member whatever
	// its owners.
	Leave(ctx context.Context, channel string, m Member) error
	// Members lists the members of channel, in no particular order.
	Members(ctx context.Context, channel string) ([]Member, error)
}

// Errors of brokers.
var (
	ErrUnrecoverable = errors.New("hub: position cannot be recovered from history")
	ErrClosed        = errors.New("hub: broker closed")
	ErrKeyTooLong    = errors.New("hub: idempotency key too long")
)

// MaxKeyLength is the longest idempotency key, in bytes, that a broker
// takes: a UUID is 36.
const MaxKeyLength = 128

// Defaults of the history and dedup bounds, for brokers that take them.
const (
	DefaultHistorySize = 1000
	DefaultHistoryTTL  = 10 * time.Minute
	DefaultDedupWindow = 2 * time.Minute
)
