package pulse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CloseCode is the status code of a WebSocket close frame (RFC 6455 section
// 7.4). Close codes are the reconnect contract between server and client:
//
//	1000            normal closure                  do not reconnect
//	1001            going away                      reconnect
//	1002 1003       protocol error, unsupported     do not reconnect
//	1005 1006       no status, abnormal (no frame)  reconnect
//	1007 1008 1009  invalid payload, policy, size   do not reconnect
//	1011            internal error                  reconnect
//	1012 1013       service restart, try later      reconnect, honour retry=
//	4000-4099       pulse: reconnect and resume     reconnect
//	4100-4199       pulse: do not reconnect         do not reconnect
//
// Any other code is treated as "do not reconnect". PROTOCOL.md repeats this
// table; the JavaScript and Go clients implement it.
type CloseCode int

// Close codes defined by RFC 6455 and the IANA registry.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupportedData CloseCode = 1003
	CloseNoStatus        CloseCode = 1005 // never sent; no code in the frame
	CloseAbnormal        CloseCode = 1006 // never sent; no close frame at all
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseMessageTooBig   CloseCode = 1009
	CloseInternalError   CloseCode = 1011
	CloseServiceRestart  CloseCode = 1012
	CloseTryAgainLater   CloseCode = 1013
)

// Close codes of pulse. 4000-4099 ask the client to reconnect and resume,
// 4100-4199 ask it not to.
const (
	// CloseHeartbeatTimeout: nothing arrived for Interval+Timeout.
	CloseHeartbeatTimeout CloseCode = 4000
	// CloseSlowConsumer: the outbound queue overflowed or a write missed
	// its deadline. Reconnect and resume from the last position.
	CloseSlowConsumer CloseCode = 4001
	// CloseTokenExpired: the signed token that identifies the client
	// expired without a refresh. Get a new token, reconnect and resume.
	CloseTokenExpired CloseCode = 4002
	// CloseUnauthorized: no valid token arrived within the liveness
	// Timeout, or a token was refused. Do not reconnect with it.
	CloseUnauthorized CloseCode = 4100
)

// Retryable reports whether a client that sees this code should reconnect.
func (c CloseCode) Retryable() bool {
	switch {
	case c >= 4000 && c <= 4099:
		return true
	case c >= 4100 && c <= 4199:
		return false
	}
	switch c {
	case CloseGoingAway, CloseNoStatus, CloseAbnormal, CloseInternalError,
		CloseServiceRestart, CloseTryAgainLater:
		return true
	}
	return false
}

var closeCodeNames = map[CloseCode]string{
	CloseNormal:           "normal",
	CloseGoingAway:        "going away",
	CloseProtocolError:    "protocol error",
	CloseUnsupportedData:  "unsupported data",
	CloseNoStatus:         "no status",
	CloseAbnormal:         "abnormal closure",
	CloseInvalidPayload:   "invalid payload",
	ClosePolicyViolation:  "policy violation",
	CloseMessageTooBig:    "message too big",
	CloseInternalError:    "internal error",
	CloseServiceRestart:   "service restart",
	CloseTryAgainLater:    "try again later",
	CloseHeartbeatTimeout: "heartbeat timeout",
	CloseSlowConsumer:     "slow consumer",
	CloseTokenExpired:     "token expired",
	CloseUnauthorized:     "unauthorized",
}

func (c CloseCode) String() string {
	if name, ok := closeCodeNames[c]; ok {
		return fmt.Sprintf("%d (%s)", int(c), name)
	}
	return strconv.Itoa(int(c))
}

// CloseError says why a connection closed: the code and reason of the close
// frame that was sent or received, or CloseAbnormal when there was none.
type CloseError struct {
	Code   CloseCode
	Reason string
	// Retry is the window the server asked the client to spread its
	// reconnect over (a "retry=<ms>" token in Reason); zero if none.
	Retry time.Duration
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return "pulse: closed " + e.Code.String()
	}
	return "pulse: closed " + e.Code.String() + ": " + e.Reason
}

// newCloseError builds a CloseError, reading the retry window from reason.
func newCloseError(code CloseCode, reason string) *CloseError {
	return &CloseError{Code: code, Reason: reason, Retry: ParseRetry(reason)}
}

// ParseRetry returns the retry window carried by a close reason as the token
// "retry=<milliseconds>", or zero when the reason has none.
func ParseRetry(reason string) time.Duration {
	for field := range strings.FieldsSeq(reason) {
		ms, ok := strings.CutPrefix(field, "retry=")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(ms, 10, 32)
		if err != nil {
			return 0
		}
		return time.Duration(n) * time.Millisecond
	}
	return 0
}

// withRetry appends the retry token for window to reason.
func withRetry(reason string, window time.Duration) string {
	return reason + " retry=" + strconv.FormatInt(window.Milliseconds(), 10)
}
