package client

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// An in-memory server for tests in virtual time: each dial is handed to
// the test, which accepts it (getting a fakeConn to play the server on) or
// refuses it.

type fakeServer struct {
	dials chan dialCall
}

type dialCall struct {
	at     time.Time
	answer chan dialAnswer
}

type dialAnswer struct {
	conn *fakeConn
	err  error
}

func newFakeServer() *fakeServer { return &fakeServer{dials: make(chan dialCall)} }

func (f *fakeServer) dial(ctx context.Context, _ string) (Transport, error) {
	call := dialCall{at: time.Now(), answer: make(chan dialAnswer, 1)}
	select {
	case f.dials <- call:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case a := <-call.answer:
		if a.err != nil {
			return nil, a.err
		}
		return a.conn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next waits for the client's next dial.
func (f *fakeServer) next(t *testing.T) dialCall {
	t.Helper()
	select {
	case call := <-f.dials:
		return call
	case <-time.After(time.Hour):
		t.Fatal("no dial within an hour")
	}
	return dialCall{}
}

// accept takes the next dial and welcomes it with the liveness rule.
func (f *fakeServer) accept(t *testing.T, interval, timeout time.Duration) *fakeConn {
	t.Helper()
	return f.welcome(f.next(t), interval, timeout)
}

// welcome answers call with a connection and welcomes it.
func (f *fakeServer) welcome(call dialCall, interval, timeout time.Duration) *fakeConn {
	conn := newFakeConn()
	call.answer <- dialAnswer{conn: conn}
	conn.sendJSON(map[string]any{"type": "welcome", "session": "s1", "interval_ms": interval.Milliseconds(), "timeout_ms": timeout.Milliseconds()})
	return conn
}

// refuse fails the next dial and returns when it was made.
func (f *fakeServer) refuse(t *testing.T) time.Time {
	t.Helper()
	call := f.next(t)
	call.answer <- dialAnswer{err: errors.New("connection refused")}
	return call.at
}

// fakeConn is a Transport whose far end is the test.
type fakeConn struct {
	toClient   chan []byte
	fromClient chan []byte
	once       sync.Once
	closed     chan struct{}
	mu         sync.Mutex
	closeErr   error           // what ReadMessage returns once closed
	closeCode  pulse.CloseCode // the code the client closed with, if it did
}

func newFakeConn() *fakeConn {
	return &fakeConn{toClient: make(chan []byte, 1000), fromClient: make(chan []byte, 1000), closed: make(chan struct{})}
}

func (c *fakeConn) ReadMessage() ([]byte, error) {
	select {
	case data := <-c.toClient:
		return data, nil
	case <-c.closed:
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.closeErr
	}
}

func (c *fakeConn) WriteMessage(data []byte) error {
	select {
	case <-c.closed:
		return errors.New("write on closed connection")
	default:
	}
	c.fromClient <- data
	return nil
}

func (c *fakeConn) Close(code pulse.CloseCode, reason string) error {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode = code
	}
	c.mu.Unlock()
	c.end(&pulse.CloseError{Code: pulse.CloseAbnormal, Reason: "closed by the client"})
	return nil
}

// end closes the connection; the client's reads fail with err.
func (c *fakeConn) end(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closeErr = err
		c.mu.Unlock()
		close(c.closed)
	})
}

// closedWith returns the code the client closed with, 0 if it did not.
func (c *fakeConn) closedWith() pulse.CloseCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// closeWith plays a close frame from the server.
func (c *fakeConn) closeWith(code pulse.CloseCode, reason string) {
	c.end(&pulse.CloseError{Code: code, Reason: reason, Retry: pulse.ParseRetry(reason)})
}

func (c *fakeConn) sendJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	c.toClient <- data
}

// recv returns the next message the client sent, decoded as the server
// decodes it.
func (c *fakeConn) recv(t *testing.T) wire.Msg {
	t.Helper()
	select {
	case data := <-c.fromClient:
		m, err := wire.DecodeRequest(data)
		if err != nil {
			t.Fatalf("client sent %q: %v", data, err)
		}
		return m
	case <-time.After(time.Hour):
		t.Fatal("client sent nothing within an hour")
	}
	return nil
}

// recv returns the next message the client sent, which must be a T.
func recv[T wire.Msg](t *testing.T, c *fakeConn) T {
	t.Helper()
	m := c.recv(t)
	typed, ok := m.(T)
	if !ok {
		t.Fatalf("client sent %T %+v, want a %q", m, m, typed.MsgType())
	}
	return typed
}

// states records every state change of a client.
type states struct {
	ch chan StateChange
}

func newStates() *states { return &states{ch: make(chan StateChange, 1000)} }

func (s *states) record(c StateChange) { s.ch <- c }

// await returns the next change to want, skipping others.
func (s *states) await(t *testing.T, want State) StateChange {
	t.Helper()
	timeout := time.After(24 * time.Hour)
	for {
		select {
		case c := <-s.ch:
			if c.State == want {
				return c
			}
		case <-timeout:
			t.Fatalf("no change to %v", want)
		}
	}
}

// run is a Client.Run in the background.
type run struct {
	done   chan struct{} // closed when Run returned; err is then set
	cancel context.CancelFunc
	err    error
}

// running starts c.Run; the cleanup cancels and joins it.
func running(t *testing.T, c *Client) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}
