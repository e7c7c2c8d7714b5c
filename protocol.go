package pulse

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// Subprotocol is the WebSocket subprotocol of the pulse protocol. A client
// that negotiates it gets the app-level heartbeat (HeartbeatApp) and JSON
// messages as described in PROTOCOL.md.
const Subprotocol = "pulse.v1"

// The heartbeat messages of each kind. Frame heartbeats are RFC 6455 ping and
// pong frames with an empty payload.
var (
	appPing  = wire.MustEncode(wire.Ping{})
	appPong  = wire.MustEncode(wire.Pong{})
	textPing = []byte("ping")
	textPong = []byte("pong")
)

// maxControlMessage is the longest pulse.v1 message that is inspected for
// being a heartbeat; longer ones are never heartbeats.
const maxControlMessage = 128

// envelope is the part of every pulse.v1 message that names its type.
type envelope struct {
	Type string `json:"type"`
}

// appHeartbeat reports whether a pulse.v1 text message is the app-level
// "ping" or "pong"; it returns "" for any other message, including malformed
// JSON, which is left to the application.
func appHeartbeat(data []byte) string {
	if len(data) > maxControlMessage {
		return ""
	}
	var env envelope
	if json.Unmarshal(data, &env) != nil {
		return ""
	}
	if env.Type == wire.TypePing || env.Type == wire.TypePong {
		return env.Type
	}
	return ""
}

// heartbeatHeader is the value of the Pulse-Heartbeat response header sent
// with every upgrade, for clients that cannot read a welcome message.
func heartbeatHeader(kind HeartbeatKind, interval, timeout time.Duration) string {
	return fmt.Sprintf("kind=%s; interval_ms=%d; timeout_ms=%d", kind, interval.Milliseconds(), timeout.Milliseconds())
}
