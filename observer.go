package pulse

import "time"

// Observer is told what happens on a Server's connections, so that it can
// count it; package prom exports the counts to Prometheus. Pass one in
// Options.Observer.
//
// The methods are called from many goroutines at once (readers, writers,
// the timing wheel), on the heartbeat path of every connection: they must
// be safe for concurrent use, must not block, and should cost no more than
// a few atomic additions.
type Observer interface {
	// Opened is called when a connection has been accepted.
	Opened()
	// Closed is called once for every opened connection, when it has
	// ended, with the reason.
	Closed(reason DisconnectReason)
	// PingSent is called when a heartbeat of kind has been written.
	PingSent(kind HeartbeatKind)
	// PongReceived is called when the peer has answered a heartbeat of
	// kind, with the round trip since the heartbeat was written.
	PongReceived(kind HeartbeatKind, rtt time.Duration)
}

// DisconnectReason says why a connection ended, in the words of a metric
// label (pulse_disconnects_total{reason}). DisconnectReasons lists them all.
type DisconnectReason string

// Why a connection ended.
const (
	// DisconnectHeartbeatTimeout: nothing arrived for Interval+Timeout
	// (close code 4000).
	DisconnectHeartbeatTimeout DisconnectReason = "heartbeat_timeout"
	// DisconnectSlowConsumer: the outbound queue overflowed (4001).
	DisconnectSlowConsumer DisconnectReason = "slow_consumer"
	// DisconnectWriteTimeout: a write missed Options.WriteTimeout (4001).
	DisconnectWriteTimeout DisconnectReason = "write_timeout"
	// DisconnectWriteError: the socket failed a write.
	DisconnectWriteError DisconnectReason = "write_error"
	// DisconnectReadError: the socket failed a read, or ended without a
	// close frame.
	DisconnectReadError DisconnectReason = "read_error"
	// DisconnectPeerClose: the peer sent a close frame.
	DisconnectPeerClose DisconnectReason = "peer_close"
	// DisconnectServerClose: the application called Conn.Close.
	DisconnectServerClose DisconnectReason = "server_close"
	// DisconnectShutdown: Server.Run drained the connection (1012).
	DisconnectShutdown DisconnectReason = "shutdown"
	// DisconnectMessageTooBig: an inbound message exceeded
	// Options.MaxMessageSize (1009).
	DisconnectMessageTooBig DisconnectReason = "message_too_big"
	// DisconnectProtocolError: the peer broke RFC 6455 or RFC 7692 (1002);
	// the std engine tells this apart from a read error only for the
	// faults pulse finds itself (compression), the epoll engine always.
	DisconnectProtocolError DisconnectReason = "protocol_error"
	// DisconnectInvalidPayload: a text message was not valid UTF-8 (1007).
	DisconnectInvalidPayload DisconnectReason = "invalid_payload"
	// DisconnectPingFlood: the peer sent more pings in a second than
	// Options.MaxPingRate (1008).
	DisconnectPingFlood DisconnectReason = "ping_flood"
)

// DisconnectReasons returns every DisconnectReason, so that an Observer can
// create its series before the first connection ends.
func DisconnectReasons() []DisconnectReason {
	return []DisconnectReason{
		DisconnectHeartbeatTimeout, DisconnectSlowConsumer, DisconnectWriteTimeout,
		DisconnectWriteError, DisconnectReadError, DisconnectPeerClose,
		DisconnectServerClose, DisconnectShutdown, DisconnectMessageTooBig,
		DisconnectInvalidPayload, DisconnectProtocolError, DisconnectPingFlood,
	}
}

// noObserver is the Observer of a Server given none.
type noObserver struct{}

func (noObserver) Opened()                                   {}
func (noObserver) Closed(DisconnectReason)                   {}
func (noObserver) PingSent(HeartbeatKind)                    {}
func (noObserver) PongReceived(HeartbeatKind, time.Duration) {}
