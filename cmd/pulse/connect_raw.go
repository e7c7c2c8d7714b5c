package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// rawConn is "pulse connect" on a plain WebSocket endpoint: lines go out
// as text messages, every message that arrives is printed, and /ping
// measures the round trip with a ping frame. It does not reconnect.
type rawConn struct {
	ws *websocket.Conn
	p  *printer

	mu   sync.Mutex // serialises the writes of data messages
	sent sync.Map   // ping payload -> time sent
}

// connectRaw runs a plain WebSocket session until stdin ends, /quit, ctx
// ends, or the server closes. A close other than 1000 or 1001, or a
// dropped connection, is returned as the error.
func connectRaw(ctx context.Context, cfg *connectConfig, in *lines, p *printer) error {
	d := websocket.Dialer{HandshakeTimeout: cfg.handshake}
	ws, resp, err := d.DialContext(ctx, cfg.url, http.Header{})
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
	r := &rawConn{ws: ws, p: p}
	ws.SetPongHandler(r.pong)
	readDone := goResult(r.read)
	err = r.loop(ctx, in, readDone)
	ws.Close()
	return err
}

func subprotocolNote(sp string) string {
	if sp == "" {
		return ""
	}
	return ", subprotocol " + sp
}

// loop sends lines until the input ends or the reader does.
func (r *rawConn) loop(ctx context.Context, in *lines, readDone <-chan error) error {
	for {
		select {
		case line, ok := <-in.c:
			if ok && line != "/quit" {
				r.send(line)
				continue
			}
			return r.close(readDone)
		case err := <-readDone:
			return err
		case <-ctx.Done():
			return r.close(readDone)
		}
	}
}

// close sends a 1000 close frame and waits briefly for the server's.
func (r *rawConn) close(readDone <-chan error) error {
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
	}
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
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			r.p.status("closed by the server: %d %s", ce.Code, ce.Text)
			if ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway {
				return nil
			}
			return fmt.Errorf("connect: the server closed the connection with %d %s", ce.Code, ce.Text)
		case err != nil:
			return fmt.Errorf("connect: connection lost: %w", err)
		case kind == websocket.BinaryMessage:
			r.p.message("(binary, %d bytes) %x", len(data), data)
		default:
			r.p.message("%s", data)
		}
	}
}
