package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// replayTimeout bounds a subscriber's replay of history. Each write is
// bounded by the server's WriteTimeout already; this is a safety net.
const replayTimeout = time.Minute

// Limits of a hello.
const (
	maxClientName = 100
	maxInfo       = 1024
)

// session is the hub's state for one connection. A session outlives its
// connection in one way: a client that presents its session token in a
// hello on a new connection keeps its member id, so presence sees the same
// member come back rather than a stranger.
type session struct {
	// Set by Accept and Open, never changed after.
	hub            *Hub
	owner          string        // names this connection in the memberships it holds
	conn           *pulse.Conn   // set by Open
	requestTimeout time.Duration // how long a request may take, from read to answer; set by Open

	// Guarded by mu: the requests waiting for the worker (requests.go).
	mu      sync.Mutex
	queue   []pending
	working bool               // a worker goroutine is running
	ended   bool               // the connection has closed: no worker may start
	room    chan struct{}      // made by a reader waiting for room in queue; closed when the worker takes one
	cancel  context.CancelFunc // ends the request the worker is serving
	worker  sync.WaitGroup

	// Owned by the worker, which serves one request at a time, and by end
	// once the worker has stopped.
	token  string // secret; presenting it in a hello continues the session
	member string // public; the member id in presence, derived from token
	client string
	info   json.RawMessage
	subs   subSet
	limit  *publishLimit // made at the first publish (limits.go)

	// Set by Accept, then owned by the worker (auth_session.go): who the
	// client is, on a hub with a Verifier; nil when anonymous, or until a
	// valid token came.
	identity *Identity

	replays sync.WaitGroup // the goroutines replaying history to the client
}

func newSession(h *Hub, id *Identity) *session {
	token, owner := h.ids.sessionIDs()
	return &session{hub: h, owner: owner, token: token, member: memberID(token), identity: id}
}

// Open welcomes the connection: the welcome is its first message.
func (s *session) Open(c *pulse.Conn) {
	_, timeout := c.Liveness()
	s.conn, s.requestTimeout = c, requestTimeout(timeout)
	s.welcome()
	s.startAuth(timeout)
}

// Receive queues a message for the session's worker (requests.go).
func (s *session) Receive(m pulse.Message) { s.receive(m) }

// Closed releases everything the session holds.
func (s *session) Closed(*pulse.CloseError) { s.end() }

// memberID derives the public member id from a session token, so that the
// id others see in presence cannot be used to take over the session.
func memberID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// validToken reports whether t has the form of a session token.
func validToken(t string) bool {
	_, err := hex.DecodeString(t)
	return len(t) == 32 && err == nil && strings.ToLower(t) == t
}

// welcome tells the client its session id and the liveness rule.
func (s *session) welcome() {
	interval, timeout := s.conn.Liveness()
	s.conn.Send(pulse.Message{Type: pulse.MessageText, Data: encodeWelcome(wire.Welcome{Session: s.token, Member: s.member, User: s.user(), IntervalMS: interval.Milliseconds(), TimeoutMS: timeout.Milliseconds()})})
}

func (s *session) peer() Peer {
	return Peer{Conn: s.conn, Member: s.member, Client: s.client, Info: s.info, User: s.user(), Claims: s.claims()}
}

func (s *session) dispatch(ctx context.Context, req wire.Msg) *protocolError {
	if _, hello := req.(wire.Hello); !hello && s.authRequired() {
		return &protocolError{code: wire.CodeUnauthorized, message: "send a hello with a token first"}
	}
	switch req := req.(type) {
	case wire.Hello:
		return s.hello(ctx, req)
	case wire.Refresh:
		return s.refresh(ctx, req)
	case wire.Subscribe:
		return s.subscribe(ctx, req)
	case wire.Unsubscribe:
		return s.unsubscribe(ctx, req)
	case wire.Publish:
		return s.publish(ctx, req)
	case wire.PresenceQuery:
		return s.presence(ctx, req)
	}
	return &protocolError{code: wire.CodeUnknownType, message: "unexpected message type " + req.MsgType()}
}

func (s *session) hello(ctx context.Context, req wire.Hello) *protocolError {
	if len(req.Client) > maxClientName || len(req.Info) > maxInfo {
		return badRequest("client name over %d bytes or info over %d bytes", maxClientName, maxInfo)
	}
	if err := s.helloToken(req.Token); err != nil {
		return err
	}
	if req.Session != "" && req.Session != s.token {
		if !validToken(req.Session) {
			return badRequest("session must be the 32 hex digits of a welcome's session")
		}
		if len(s.subs) > 0 {
			return badRequest("a hello that continues a session must come before any subscribe")
		}
		s.token, s.member = req.Session, memberID(req.Session)
	}
	s.client, s.info = req.Client, req.Info
	s.reply(ctx, wire.Ack{ID: req.ID, Session: s.token, Member: s.member, User: s.user()})
	return nil
}

// helloToken takes the token of a hello, which a hub with a Verifier
// needs unless one came at the upgrade; an anonymous hub ignores it.
func (s *session) helloToken(token string) *protocolError {
	switch {
	case s.hub.opts.Verifier == nil:
		return nil
	case token != "":
		return s.takeToken(token)
	case s.identity == nil:
		return &protocolError{code: wire.CodeUnauthorized, message: "this server needs a token in the hello"}
	}
	return nil
}

// authorize applies the token's patterns, then asks Options.Authorize, if
// any.
func (s *session) authorize(a Action, channel string) *protocolError {
	if err := s.permitted(a, channel); err != nil {
		return err
	}
	if s.hub.opts.Authorize == nil {
		return nil
	}
	if err := s.hub.opts.Authorize(s.peer(), a, channel); err != nil {
		return &protocolError{code: wire.CodeForbidden, message: err.Error()}
	}
	return nil
}

// unavailable reports a broker failure to the log and the client.
func (s *session) unavailable(op string, err error) *protocolError {
	s.hub.opts.Logger.Warn("hub: broker failed", "op", op, "err", err)
	return &protocolError{code: wire.CodeUnavailable, message: op + " failed; try again"}
}

func (s *session) subscribe(ctx context.Context, req wire.Subscribe) *protocolError {
	if s.subs.get(req.Channel) != nil {
		return badRequest("already subscribed to %q", req.Channel)
	}
	if len(s.subs) >= s.hub.opts.MaxSubscriptions {
		return &protocolError{code: wire.CodeTooMany, message: "subscription limit reached"}
	}
	if err := s.authorize(ActionSubscribe, req.Channel); err != nil {
		return err
	}
	sub := &subscription{s: s, channel: req.Channel, presence: req.Presence, recovering: true}
	fan, err := s.hub.join(ctx, sub)
	if err != nil {
		return s.unavailable("subscribe", err)
	}
	var since Position
	if req.Since != nil {
		since = *req.Since
	}
	pubs, top, err := s.hub.opts.Broker.History(ctx, req.Channel, since)
	if err != nil && !errors.Is(err, ErrUnrecoverable) {
		s.hub.leave(sub)
		return s.unavailable("history", err)
	}
	if len(pubs) > s.hub.opts.MaxReplay {
		pubs, err = nil, ErrUnrecoverable // too far behind: the client refetches
	}
	s.subs.add(sub)
	reply := wire.Subscribed{ID: req.ID, Channel: req.Channel, Position: top}
	if req.Since != nil {
		recovered := err == nil
		reply.Recovered = &recovered
	}
	if sub.presence {
		s.join(ctx, sub)
	}
	// The replay runs beside the reader, which must go on reading: the
	// client's heartbeat answers count as its life.
	s.reply(ctx, reply) // the answer comes first, whatever happens to the replay
	if len(pubs) == 0 {
		s.turnLive(ctx, fan, sub, top)
		return nil
	}
	replayCtx, stop := context.WithTimeout(context.Background(), replayTimeout)
	sub.stopReplay, sub.replayed = stop, make(chan struct{})
	s.replays.Go(func() {
		defer close(sub.replayed)
		defer stop()
		err := fan.recover(replayCtx, sub, pubs, top)
		if errors.Is(err, context.DeadlineExceeded) {
			s.conn.Close(pulse.CloseSlowConsumer, "history replay not taken in time")
		}
	})
	return nil
}

// turnLive turns a subscription with no history to replay live, in the
// worker: it sends the few live events that came during the subscribe, so
// a subscription holds no replay goroutine, context or channel.
func (s *session) turnLive(ctx context.Context, fan *fanout, sub *subscription, top Position) {
	if err := fan.recover(ctx, sub, nil, top); errors.Is(err, context.DeadlineExceeded) {
		s.conn.Close(pulse.CloseSlowConsumer, "live events of a subscribe not taken in time")
	}
}

func (s *session) asMember() Member {
	return Member{ID: s.member, User: s.user(), Client: s.client, Info: s.info, Owner: s.owner}
}

// join makes the session a member of sub's channel.
func (s *session) join(ctx context.Context, sub *subscription) {
	if pb, ok := s.hub.opts.Broker.(PresenceBroker); ok {
		if err := pb.Join(ctx, sub.channel, s.asMember()); err != nil {
			s.hub.opts.Logger.Warn("hub: presence join failed", "channel", sub.channel, "err", err)
		}
	}
}

// drop ends sub: it leaves the channel and, if a member, its presence.
func (s *session) drop(ctx context.Context, sub *subscription) {
	if sub.stopReplay != nil {
		sub.stopReplay() // nothing of the channel may follow its unsubscribe's ack
		<-sub.replayed
	}
	s.subs.remove(sub.channel)
	s.hub.leave(sub)
	if pb, ok := s.hub.opts.Broker.(PresenceBroker); ok && sub.presence {
		if err := pb.Leave(ctx, sub.channel, s.asMember()); err != nil {
			s.hub.opts.Logger.Warn("hub: presence leave failed", "channel", sub.channel, "err", err)
		}
	}
}

func (s *session) unsubscribe(ctx context.Context, req wire.Unsubscribe) *protocolError {
	sub := s.subs.get(req.Channel)
	if sub == nil {
		return &protocolError{code: wire.CodeNotSubscribed, message: "not subscribed to " + req.Channel}
	}
	s.drop(ctx, sub)
	s.reply(ctx, wire.Ack{ID: req.ID})
	return nil
}

func (s *session) publish(ctx context.Context, req wire.Publish) *protocolError {
	if err := s.authorize(ActionPublish, req.Channel); err != nil {
		return err
	}
	if err := s.limitPublish(); err != nil {
		return err
	}
	res, err := s.hub.opts.Broker.Publish(ctx, req.Channel, req.Data, PublishOptions{IdempotencyKey: req.Key, From: s.member})
	if err != nil {
		return s.unavailable("publish", err)
	}
	s.awaitReplay(ctx, req.Channel)
	s.reply(ctx, wire.Ack{ID: req.ID, Pos: &res.Pos, Duplicate: res.Duplicate})
	return nil
}

func (s *session) presence(ctx context.Context, req wire.PresenceQuery) *protocolError {
	if err := s.authorize(ActionSubscribe, req.Channel); err != nil {
		return err
	}
	members, err := s.hub.Members(ctx, req.Channel)
	if err != nil {
		return s.unavailable("presence", err)
	}
	list := make([]wire.Member, len(members))
	for i, m := range members {
		list[i] = m.Wire()
	}
	s.reply(ctx, wire.Presence{ID: req.ID, Channel: req.Channel, Members: list})
	return nil
}

// awaitReplay waits, until ctx ends, for the replay of a subscription to
// channel that is still recovering: a subscriber gets its own publication
// before the publish's ack, as it would had the subscription been live.
func (s *session) awaitReplay(ctx context.Context, channel string) {
	if sub := s.subs.get(channel); sub != nil && sub.replayed != nil {
		select {
		case <-sub.replayed:
		case <-ctx.Done():
		}
	}
}

// end releases everything the session holds, once its connection closed.
func (s *session) end() {
	s.stopWorker()
	if len(s.subs) > 0 { // most connections end with none: no context to make
		s.dropAll()
	}
	s.replays.Wait() // the connection has closed: each ends at its next send
}

// dropAll ends every subscription, its broker calls bounded by brokerTimeout.
func (s *session) dropAll() {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	for len(s.subs) > 0 {
		s.drop(ctx, s.subs[len(s.subs)-1])
	}
}
