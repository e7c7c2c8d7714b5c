package hub

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// Publishes per connection: a token bucket of Options.PublishRate and
// PublishBurst. A publish beyond it is answered "rate_limited" with the
// time until it would pass. A client that goes on past a second bucket of
// the same size (so publishing at more than twice the rate, sustained) is
// closed with 1008: it is not a client slowing down when told.

// Defaults of the publish limit.
const (
	DefaultPublishRate  = 50 // per second
	DefaultPublishBurst = 100
)

// Reasons of the hub's refusals, as Options.Refused receives them.
const (
	ReasonPublishRate  = "publish_rate"  // a publish answered rate_limited
	ReasonPublishAbuse = "publish_abuse" // a connection closed for publishing past twice the rate
	ReasonUnauthorized = "unauthorized"  // a connection closed for lack of a valid token
)

// Reasons lists every reason of Options.Refused, so that a counter can
// create its series.
func Reasons() []string { return []string{ReasonPublishRate, ReasonPublishAbuse, ReasonUnauthorized} }

// publishLimit is a session's publish buckets, made at its first publish
// (an idle connection holds none). Owned by the worker.
type publishLimit struct {
	allowed *rate.Limiter // publishes
	refused *rate.Limiter // refusals a client may take before it is closed
}

// limitPublish takes a publish from the session's bucket, or refuses it.
func (s *session) limitPublish() *protocolError {
	o := &s.hub.opts
	if s.limit == nil {
		s.limit = &publishLimit{
			allowed: rate.NewLimiter(rate.Limit(o.PublishRate), o.PublishBurst),
			refused: rate.NewLimiter(rate.Limit(o.PublishRate), o.PublishBurst),
		}
	}
	now := time.Now()
	r := s.limit.allowed.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	r.CancelAt(now)
	if !s.limit.refused.AllowN(now, 1) {
		s.refuse(ReasonPublishAbuse, "publishing past twice the rate limit")
		s.conn.Close(pulse.ClosePolicyViolation, "publish rate limit exceeded")
	} else {
		s.refuse(ReasonPublishRate, "publish rate limited")
	}
	return &protocolError{code: wire.CodeRateLimited, message: "publishing too fast", retryAfter: wait}
}

// refuse counts a refusal and logs it, at most refusalLogBurst lines per
// refusalLogWindow for the whole hub.
func (s *session) refuse(reason, text string) {
	s.hub.opts.Refused(reason)
	s.hub.refusalLog.Do(func() {
		s.hub.opts.Logger.Warn("hub: refused", "reason", reason, "detail", text, "remote", s.conn.RemoteAddr(), "user", s.user())
	})
}

// Bounds of the hub's refusal log.
const (
	refusalLogBurst  = 10
	refusalLogWindow = 10 * time.Second
)
