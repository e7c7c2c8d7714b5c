package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// rawConn is "pulse connect" on a plain WebSocket endpoint: lines go out
// as text messages, every message that arrives is printed, and /ping
// measures the round trip with a ping frame. It does not reconnect.
type rawConn struct {
	// Set by connectRaw, never changes.
	ws   *websocket.Conn
	p    *printer
	wait time.Duration // --wait

	mu   sync.Mutex // serialises the writes of data messages
	sent sync.Map   // ping payload -> time sent

	lines   atomic.Int64  // text messages sent
	answers atomic.Int64  // messages received
	arrived chan struct{} // cap 1: a message was received
	closing atomic.Bool   // this side sent the close frame
}

// rawQuiet is how long, at the end of the input, the answers may pause
// before "pulse connect" stops waiting for them.
const rawQuiet = 2 * time.Second

// connectRaw runs a plain WebSocket session until stdin ends, /quit, ctx
// ends, or the server closes. At the end of the input or /quit it waits
// for as many messages as it sent lines (an echo's answers), until they
// pause for rawQuiet, at most --wait, then closes with 1000. A close other
// than 1000 or 1001, or a dropped connection, is returned as the error.
// Lines held from the pulse.v1 attempt go first.
func connectRaw(ctx context.Context, cfg *connectConfig, held []string, in *lines, p *printer) error {
	d := websocket.Dialer{HandshakeTimeout: cfg.handshake, TLSClientConfig: cfg.tls}
	header := http.Header{}
	if cfg.token != "" {
		header.Set("Authorization", "Bearer "+cfg.token)
	}
	ws, resp, err := d.DialContext(ctx, cfg.url, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return fmt.Errorf("connect: %s: handshake refused: %s", cfg.url, resp.Status)
		}
		return fmt.Errorf("connect: %w", err)
	}
	p.status("open (plain WebSocket%s)", subprotocolNote(ws.Subprotocol()))
	r := &rawConn{ws: ws, p: p, wait: cfg.wait, arrived: make(chan struct{}, 1)}
	ws.SetPongHandler(r.pong)
	readDone := goResult(r.read)
	err = r.loop(ctx, held, in, readDone)
	ws.Close()
	return err
}

func subprotocolNote(sp string) string {
	if sp == "" {
		return ""
	}
	return ", subprotocol " + sp
}

// loop sends the held lines, then the input's, until the input ends,
// /quit, or the reader ends.
func (r *rawConn) loop(ctx context.Context, held []string, in *lines, readDone <-chan error) error {
	for _, line := range held {
		if line == "/quit" {
			return r.end(ctx, readDone)
		}
		r.send(line)
	}
	for {
		select {
		case line, ok := <-in.c:
			if ok && line != "/quit" {
				r.send(line)
				continue
			}
			return r.end(ctx, readDone)
		case err := <-readDone:
			return err
		case <-ctx.Done():
			return r.close(readDone)
		}
	}
}

// end waits for the answers, then closes.
func (r *rawConn) end(ctx context.Context, readDone <-chan error) error {
	if err, ended := r.awaitAnswers(ctx, readDone); ended {
		return err
	}
	return r.close(readDone)
}

// awaitAnswers waits until as many messages have arrived as lines were
// sent, the answers pause for rawQuiet, --wait has passed, or ctx ends.
// If the reader ended first, it returns its result and true.
func (r *rawConn) awaitAnswers(ctx context.Context, readDone <-chan error) (error, bool) {
	bound := time.NewTimer(r.wait)
	defer bound.Stop()
	quiet := time.NewTimer(rawQuiet)
	defer quiet.Stop()
	for r.answers.Load() < r.lines.Load() {
		select {
		case <-r.arrived:
			quiet.Reset(rawQuiet)
		case err := <-readDone:
			return err, true
		case <-quiet.C:
			return nil, false
		case <-bound.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
	return nil, false
}

// close sends a 1000 close frame and waits briefly for the server's.
func (r *rawConn) close(readDone <-chan error) error {
	r.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	r.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	t := time.AfterFunc(2*time.Second, func() { r.ws.Close() })
	defer t.Stop()
	<-readDone
	return nil
}

func (r *rawConn) send(line string) {
	if line == "/ping" {
		payload := strconv.FormatInt(time.Now().UnixNano(), 10)
		r.sent.Store(payload, time.Now())
		if err := r.ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(5*time.Second)); err != nil {
			r.p.status("ping: %v", err)
		}
		return
	}
	if len(line) > 1 && line[:2] == "//" {
		line = line[1:]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := r.ws.WriteMessage(websocket.TextMessage, []byte(line)); err != nil {
		r.p.status("send: %v", err)
		return
	}
	r.lines.Add(1)
}

func (r *rawConn) pong(payload string) error {
	if at, ok := r.sent.LoadAndDelete(payload); ok {
		r.p.status("rtt %v", time.Since(at.(time.Time)).Round(time.Microsecond))
	}
	return nil
}

// read prints every message until the connection ends, and says how.
func (r *rawConn) read() error {
	for {
		kind, data, err := r.ws.ReadMessage()
		if err != nil {
			return r.ended(err)
		}
		if kind == websocket.BinaryMessage {
			r.p.message("(binary, %d bytes) %x", len(data), data)
		} else {
			r.p.message("%s", data)
		}
		r.answers.Add(1)
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}
}

// ended says how the connection ended and returns the error it means.
func (r *rawConn) ended(err error) error {
	var ce *websocket.CloseError
	switch {
	case r.closing.Load():
		r.p.status("closed")
		return nil
	case errors.As(err, &ce):
		r.p.status("closed by the server: %d %s", ce.Code, ce.Text)
		if ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway {
			return nil
		}
		return fmt.Errorf("connect: the server closed the connection with %d %s", ce.Code, ce.Text)
	}
	return fmt.Errorf("connect: connection lost: %w", err)
}
