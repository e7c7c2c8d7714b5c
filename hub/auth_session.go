package hub

import (
	"context"
	"errors"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// A session's identity, on a hub with a Verifier. The token comes at the
// upgrade (checked by Accept) or in the hello; until one is valid the
// client may send only hellos, and it is closed with CloseUnauthorized
// once the liveness Timeout passes without one. A valid token's expiry
// then closes the connection with CloseTokenExpired unless a refresh
// brought a newer token of the same user first. The connection's one
// deadline (pulse.Conn.OnDeadline, kept by the server's timing wheel: no
// timer per connection) stands for whichever of the two applies.

// authRequired reports whether the session needs a token it has not yet
// presented.
func (s *session) authRequired() bool {
	return s.hub.opts.Verifier != nil && s.identity == nil
}

// startAuth sets the connection's deadline at Open.
func (s *session) startAuth(timeout time.Duration) {
	switch {
	case s.hub.opts.Verifier == nil:
	case s.identity == nil:
		s.arm(time.Now().Add(timeout), pulse.CloseUnauthorized, "unauthorized: no token within the timeout")
	default:
		s.armExpiry()
	}
}

// armExpiry sets the deadline to the identity's expiry. A zero expiry is
// long past (OnDeadline would read it as none): the deadline is now.
func (s *session) armExpiry() {
	t := s.identity.Expires
	if t.IsZero() {
		t = time.Now()
	}
	s.arm(t, pulse.CloseTokenExpired, "token expired")
}

// arm replaces the connection's deadline: at t, it is closed with code and
// reason.
func (s *session) arm(t time.Time, code pulse.CloseCode, reason string) {
	s.conn.OnDeadline(t, func() { s.expire(code, reason) })
}

// expire closes the connection at its deadline, from the timing wheel's
// goroutine: nothing here blocks (Close does not; the refusal log is
// rate-limited).
func (s *session) expire(code pulse.CloseCode, reason string) {
	if code == pulse.CloseUnauthorized {
		s.refuse(ReasonUnauthorized, reason)
	}
	s.conn.Close(code, reason)
}

// takeToken verifies a token from a hello or a refresh and makes its
// identity the session's. A session without one yet is closed when its
// token is refused: with CloseTokenExpired for an expired one (the client
// fetches a new one and comes back), else with CloseUnauthorized. A
// session that has one keeps it, and gets an error.
func (s *session) takeToken(token string) *protocolError {
	id, err := s.hub.verify(token)
	if err != nil {
		if s.identity == nil {
			code := pulse.CloseUnauthorized
			if errors.Is(err, ErrTokenExpired) {
				code = pulse.CloseTokenExpired
			} else {
				s.refuse(ReasonUnauthorized, err.Error())
			}
			s.conn.Close(code, "unauthorized: "+err.Error())
		}
		return &protocolError{code: wire.CodeUnauthorized, message: err.Error()}
	}
	if s.identity != nil && id.User != s.identity.User {
		return &protocolError{code: wire.CodeForbidden, message: "the token names another user"}
	}
	s.identity = id
	s.armExpiry()
	return nil
}

// refresh takes a newer token of the connection's user.
func (s *session) refresh(ctx context.Context, req wire.Refresh) *protocolError {
	if s.hub.opts.Verifier == nil {
		s.reply(ctx, wire.Ack{ID: req.ID}) // an anonymous hub needs none
		return nil
	}
	if err := s.takeToken(req.Token); err != nil {
		return err
	}
	s.reply(ctx, wire.Ack{ID: req.ID})
	return nil
}

// user is the user id of the session, or "" when anonymous.
func (s *session) user() string {
	if s.identity == nil {
		return ""
	}
	return s.identity.User
}

// claims are the session's token claims, or nil when anonymous.
func (s *session) claims() map[string]any {
	if s.identity == nil {
		return nil
	}
	return s.identity.Claims
}

// permitted applies the token's patterns, on a hub with a Verifier.
func (s *session) permitted(a Action, channel string) *protocolError {
	if s.hub.opts.Verifier == nil {
		return nil
	}
	if s.identity == nil {
		return &protocolError{code: wire.CodeUnauthorized, message: "present a token first"}
	}
	if !s.identity.allows(a, channel) {
		return &protocolError{code: wire.CodeForbidden, message: "the token does not allow " + a.String() + " in " + channel}
	}
	return nil
}
