// Package pulse serves WebSocket connections that know when they are dead.
//
// Create a Server with NewServer, mount the http.Handler returned by
// Server.Handle in any mux, and call Server.Run: it drives the heartbeats of
// every connection and, when its context ends, drains them with
// CloseServiceRestart spread over a window. A Handler's callbacks see each
// connection open, its messages and its close; Conn.Send queues a message.
//
// # Heartbeats
//
// The server sends one heartbeat per connection every Interval (default
// 25s), the first at a random phase, as an RFC 6455 ping frame, a pulse.v1
// {"type":"ping"} message, or the text "ping", chosen per connection. Any
// inbound frame counts as life. A connection with nothing inbound for
// Interval+Timeout (default 10s) is closed with CloseHeartbeatTimeout,
// within one tick of the shared timing wheel (Server.Tick). RTT is measured
// from every answered heartbeat. All connections share one timing wheel: an
// idle connection has no timer and no writer goroutine.
//
// # Concurrency
//
// Server and Conn methods may be called from any goroutine. Each connection
// has exactly one writer; Send never blocks, and a connection whose queue
// fills (Options.QueueSize) or whose write misses Options.WriteTimeout is
// closed with CloseSlowConsumer. Handler callbacks of one connection run one
// at a time on its reader.
//
// The wire protocol and the close codes are documented in PROTOCOL.md.
package pulse
