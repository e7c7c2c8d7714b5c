// Package client is the Go client of the pulse.v1 protocol: a connection
// that notices a dead server, reconnects, and resumes every channel without
// a gap or a duplicate.
//
// Use New with the server's ws:// or wss:// URL and call Client.Run: it
// dials, keeps the connection alive and reconnects until its context ends
// or the server closes with a terminal code. Subscribe, Publish (or Send
// and Ack.Wait) and Ping may be called before or while Run runs; publishes
// wait offline in a bounded queue (ErrQueueFull, ErrExpired, ErrReplaced).
//
// # States
//
// StateConnecting (dialing), StateOpen (welcomed), StateDegraded (nothing
// heard for one Interval plus a tick: the client probes with a ping),
// StateReconnecting (lost; waiting out the backoff), StateClosed (Run has
// returned). Options.OnState reports every change.
//
// # Liveness and backoff
//
// The welcome tells the client the server's Interval and Timeout. Any
// inbound frame counts as life; nothing inbound for Interval+Timeout means
// the server is gone, judged by timestamps. A lost connection is redialed
// after Backoff(attempt, 500ms, 20s, nil): full jitter, random in
// [0, min(20s, 500ms*2^attempt)]. The attempt counter resets only after a
// connection stayed open for Options.StableAfter. A close frame with a
// retry=<ms> window replaces the backoff by a random delay in [0, window]
// (cut to MaxRetryWindow): the client rule of PROTOCOL.md, as in pulse.js.
// Terminal close codes (pulse.CloseCode.Retryable is false) end Run.
// Every connection after the first continues the first one's session (a
// hello with its token), so presence sees the same member, Client.Member,
// come back.
//
// # Concurrency
//
// All methods may be called from any goroutine. The callbacks of Options
// run one at a time on Run's goroutine: they must not block, nor wait for
// a Publish, Subscribe or Ping (start a goroutine for that).
//
// The wire protocol is documented in PROTOCOL.md at the module root.
package client
