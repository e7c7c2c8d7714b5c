package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/client"
)

// A server may accept the subprotocol pulse.v1 without speaking it (an
// echo endpoint behind a handler that offers every subprotocol, such as
// pulse serve's /echo). A pulse.v1 server's first message is its welcome
// (PROTOCOL.md), so the console watches the first connection's first
// messages: anything but a welcome or a heartbeat, or no welcome within
// --handshake-timeout, means the endpoint does not speak pulse.v1, and
// "pulse connect" goes on in plain WebSocket mode.

// notPulseError is connectPulse's answer when the server does not speak
// pulse.v1: it did not negotiate it, or accepted it and then did not speak
// it. It is a client.ErrNotPulse.
type notPulseError struct {
	accepted bool     // the server negotiated pulse.v1
	reason   string   // what it did then
	held     []string // lines read before the verdict, for the plain WebSocket mode to send
}

func (e *notPulseError) Error() string {
	if !e.accepted {
		return "the server does not speak " + pulse.Subprotocol
	}
	return fmt.Sprintf("the server accepted %s but %s: it does not speak it", pulse.Subprotocol, e.reason)
}

func (e *notPulseError) Unwrap() error { return client.ErrNotPulse }

// dial is the console's client.Options.Dial: the client's own WebSocket
// dial, its transport watched until the welcome.
func (k *console) dial(ctx context.Context, url string) (client.Transport, error) {
	t, err := client.DialWebSocketTLS(ctx, url, k.cfg.handshake, k.cfg.tls)
	if err != nil {
		return nil, err
	}
	return &welcomeCheck{Transport: t, k: k}, nil
}

// States of a welcomeCheck.
const (
	awaitingWelcome int32 = iota
	welcomed
	endedUnwelcomed
)

// welcomeCheck is a transport until its welcome. ReadMessage runs on the
// client's reader goroutine and Close on its run goroutine: the state is
// atomic, and whichever of them ends the wait reports why.
type welcomeCheck struct {
	client.Transport
	k     *console
	state atomic.Int32
}

func (w *welcomeCheck) ReadMessage() ([]byte, error) {
	data, err := w.Transport.ReadMessage()
	if w.state.Load() != awaitingWelcome {
		return data, err
	}
	switch {
	case err != nil:
		w.state.CompareAndSwap(awaitingWelcome, endedUnwelcomed)
	case isWelcome(data):
		w.state.Store(welcomed)
	case isHeartbeat(data): // the client answers it
	case w.state.CompareAndSwap(awaitingWelcome, endedUnwelcomed):
		w.k.reportNotPulse(fmt.Sprintf("its first message was %s, not a welcome", clip(data, 60)))
		return nil, &pulse.CloseError{Code: pulse.CloseProtocolError, Reason: "not a " + pulse.Subprotocol + " server"}
	}
	return data, err
}

// Close before the welcome, other than at the end of Run, is the client
// giving up the wait for it.
func (w *welcomeCheck) Close(code pulse.CloseCode, reason string) error {
	if w.state.CompareAndSwap(awaitingWelcome, endedUnwelcomed) && w.k.runCtx.Err() == nil {
		w.k.reportNotPulse(fmt.Sprintf("sent no welcome within %v (--handshake-timeout)", w.k.cfg.handshake))
	}
	return w.Transport.Close(code, reason)
}

// reportNotPulse records why the endpoint does not speak pulse.v1. Only
// the first connection's verdict counts (see onReconnecting and result).
func (k *console) reportNotPulse(reason string) {
	k.notPulse.CompareAndSwap(nil, &reason)
}

// isHeartbeat reports whether data is an app heartbeat, which a server
// may send before its welcome has been written.
func isHeartbeat(data []byte) bool {
	return len(data) <= 128 && (jsonType(data) == "ping" || jsonType(data) == "pong")
}

// clip quotes data, cut to at most n bytes.
func clip(data []byte, n int) string {
	if len(data) > n {
		return fmt.Sprintf("%q...", data[:n])
	}
	return fmt.Sprintf("%q", data)
}
