// Package hub speaks the pulse.v1 protocol: channels with history and
// positions, resume after a reconnect, presence, and acknowledged,
// idempotent publishes.
//
// Create a Hub with New and mount it, a pulse.Handler, on a pulse.Server:
//
//	h := hub.New(nil) // the in-memory broker
//	mux.Handle("/ws", server.Handler(h))
//
// Each connection's state is its own session; its requests run in order on
// a worker of their own, off the connection's reader.
//
// Server code publishes with Hub.Publish, or over HTTP with PublishHandler.
// Options.Verifier (package auth for JWTs) makes clients present signed
// tokens whose patterns say where they may subscribe and publish, and
// Options.Authorize adds the application's own rules.
//
// # Positions and resume
//
// Every publication has a Position (epoch, offset) in its channel. A client
// that subscribes with "since" gets exactly what it missed from the bounded
// history, then live publications with no gap and no duplicate; or it is
// told recovered: false when the epoch changed or the gap left the history.
// A session outlives its connection: a hello with the token of an earlier
// welcome continues it, so presence sees the same member come back.
//
// # Brokers
//
// A Broker stores the streams and carries events between nodes. Memory is
// the default; every Broker passes the suite in package hubtest. Presence
// is an optional PresenceBroker ability.
//
// # Concurrency
//
// Hub methods may be called from any goroutine. Publishers never block on
// subscribers: a subscriber that falls behind is closed with
// pulse.CloseSlowConsumer and resumes from history.
//
// The wire format is documented in PROTOCOL.md at the repository root.
package hub
