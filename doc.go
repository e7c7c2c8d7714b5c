// Package pulse serves WebSocket connections that know when they are dead.
//
// Create a Server with NewServer, mount Server.Handler(h) in any mux, and
// call Server.Run: it drives the heartbeats of every connection and, when
// its context ends, drains them with CloseServiceRestart spread over a
// window. A Handler sees each upgrade request and returns the Session that
// owns the connection: its Open, Receive and Closed see the connection
// open, its messages and its end; Conn.Send queues a message. Funcs makes
// a Handler of plain functions; Options.Observer counts what happens (the
// prom package exports it to Prometheus). Options.Compression offers
// permessage-deflate; Prepare readies a message sent to many connections,
// so that it is compressed once.
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
// idle connection has no timer and no writer goroutine. With
// Options.Engine set to EngineEpoll (Linux), it has no reader goroutine
// and no buffer either: one epoll loop reads every connection.
//
// # Concurrency
//
// Server and Conn methods may be called from any goroutine. Each connection
// has exactly one writer; Send never blocks, and a connection whose queue
// fills (Options.QueueSize) or whose write misses Options.WriteTimeout is
// closed with CloseSlowConsumer. The Session methods of one connection run
// one at a time; Receive runs on its reader (on EngineEpoll, a goroutine
// that exists while received messages wait).
//
// The wire protocol and the close codes are documented in PROTOCOL.md.
package pulse
