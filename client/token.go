package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// Tokens: with Options.Token, the client fetches a token before every
// dial and presents it in the hello, the way that keeps it out of URLs.
// While connected it fetches a newer one ahead of the old one's expiry
// and sends it in a refresh. A connection closed with 4002 (token
// expired) is retryable: the next dial fetches a new token first, as
// every dial does.

// maxRefreshMargin bounds how long before its expiry a token is
// refreshed; a token is refreshed once a fifth of its remaining life is
// left, but no earlier than this before expiry.
const maxRefreshMargin = time.Minute

// refreshDelay is how long after now the token should be refreshed; false
// if the token states no expiry.
func refreshDelay(token string, now time.Time) (time.Duration, bool) {
	exp, ok := tokenExpiry(token)
	if !ok {
		return 0, false
	}
	left := exp.Sub(now)
	return max(left-min(left/5, maxRefreshMargin), 0), true
}

// tokenExpiry reads the "exp" of a JWT's payload. The client only
// schedules by it; the server verifies the token.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(*claims.Exp*float64(time.Second))), true
}

// fetchToken calls Options.Token, if any.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	if c.opts.Token == nil {
		return "", nil
	}
	token, err := c.opts.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return token, nil
}

// tokenResult is a token fetched for a refresh.
type tokenResult struct {
	token string
	err   error
}

// scheduleRefresh arms the connection's refresh timer for its token.
func (cn *connection) scheduleRefresh(token string) {
	d, ok := refreshDelay(token, time.Now())
	if !ok {
		return
	}
	if cn.refreshTimer == nil {
		cn.refreshTimer = time.NewTimer(d)
		return
	}
	cn.refreshTimer.Reset(d)
}

// refreshC is the channel of the refresh timer, nil without one.
func (cn *connection) refreshC() <-chan time.Time {
	if cn.refreshTimer == nil {
		return nil
	}
	return cn.refreshTimer.C
}

// fetchRefresh fetches a newer token beside the run loop, which goes on
// serving the connection; the result arrives on cn.fetched.
func (cn *connection) fetchRefresh(ctx context.Context) {
	cn.fetching.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, cn.c.opts.HandshakeTimeout)
		defer cancel()
		token, err := cn.c.fetchToken(ctx)
		select {
		case cn.fetched <- tokenResult{token, err}:
		case <-ctx.Done():
		}
	})
}

// refresh sends a fetched token; a fetch that failed is tried again at a
// tenth of the time left (the server closes with 4002 if none comes).
func (cn *connection) refresh(r tokenResult) error {
	if r.err != nil || r.token == "" {
		if d, ok := refreshDelay(cn.token, time.Now()); ok {
			cn.refreshTimer.Reset(max(d/10, time.Second))
		}
		return nil
	}
	cn.token = r.token
	cn.scheduleRefresh(r.token)
	return cn.t.WriteMessage(wire.MustEncode(wire.Refresh{ID: cn.id(), Token: r.token}))
}
