package hub

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// Publishes per connection: a token bucket of Options.PublishRate and
// PublishBurst. A publish beyond it is answered "rate_limited" with the
// time until it would pass. Refusals drain a second bucket, of the same
// rate and abuseBursts times the burst: a client that empties it (1,000
// refused publishes beyond the rate, by default) is closed with 1008, for
// it is not slowing down when told. The second bucket is deep so that a
// client flushing its offline queue (256 publishes) at once, and then
// pacing them as told, is never cut.

// Defaults of the publish limit.
const (
	DefaultPublishRate  = 50 // per second
	DefaultPublishBurst = 100
)

// Reasons of the hub's refusals, as Options.Refused receives them.
const (
	ReasonPublishRate  = "publish_rate"  // a publish answered rate_limited
	ReasonPublishAbuse = "publish_abuse" // a connection closed for going on publishing when refused
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
			refused: rate.NewLimiter(rate.Limit(o.PublishRate), abuseBursts*o.PublishBurst),
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
		s.refuse(ReasonPublishAbuse, "went on publishing when refused")
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

// abuseBursts is the depth of the refusals bucket, in bursts.
const abuseBursts = 10

// Bounds of the hub's refusal log.
const (
	refusalLogBurst  = 10
	refusalLogWindow = 10 * time.Second
)
