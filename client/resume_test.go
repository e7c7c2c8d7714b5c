package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// Resume and the send queue, against the fake server in virtual time.

func pub(epoch string, offset uint64) map[string]any {
	return map[string]any{"pos": Position{Epoch: epoch, Offset: offset}, "data": json.RawMessage(fmt.Sprintf(`{"n":%d}`, offset))}
}

func live(channel, epoch string, offset uint64) map[string]any {
	m := pub(epoch, offset)
	m["type"], m["channel"] = "message", channel
	return m
}

// collector gathers what the client delivers.
type collector struct {
	msgs chan Message
	subs chan Subscribed
}

func newCollector(opts *Options) *collector {
	c := &collector{msgs: make(chan Message, 1000), subs: make(chan Subscribed, 100)}
	opts.OnMessage = func(m Message) { c.msgs <- m }
	opts.OnSubscribed = func(s Subscribed) { c.subs <- s }
	return c
}

// offsets drains what was delivered so far.
func (c *collector) offsets() (got []uint64) {
	synctest.Wait()
	for {
		select {
		case m := <-c.msgs:
			got = append(got, m.Pos.Offset)
		default:
			return got
		}
	}
}

func TestResubscribeResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		opts := &Options{Backoff: func(int) time.Duration { return time.Second }}
		got := newCollector(opts)
		c := newTestClient(f, s, opts)
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		subscribed := make(chan Subscribed, 1)
		go func() {
			ev, err := c.Subscribe(context.Background(), "room", nil)
			if err != nil {
				t.Error(err)
			}
			subscribed <- ev
		}()
		r := recv[wire.Subscribe](t, conn)
		if r.Channel != "room" || r.Since != nil {
			t.Fatalf("first subscribe: %+v", r)
		}
		conn.sendJSON(map[string]any{"type": "subscribed", "id": r.ID, "channel": "room", "position": Position{Epoch: "e1", Offset: 5}})
		if ev := <-subscribed; ev.Resumed || ev.Position.Offset != 5 {
			t.Fatalf("Subscribe returned %+v", ev)
		}
		conn.sendJSON(live("room", "e1", 6))
		conn.sendJSON(live("room", "e1", 7))
		if o := got.offsets(); fmt.Sprint(o) != "[6 7]" {
			t.Fatalf("delivered %v, want [6 7]", o)
		}
		conn.end(errors.New("reset"))

		// Back: resume from 7; the server replays 6..9 (6 and 7 twice),
		// then sends 9 live again and 10.
		conn = f.accept(t, time.Hour, time.Hour)
		r = recv[wire.Subscribe](t, conn)
		if r.Since == nil || *r.Since != (Position{Epoch: "e1", Offset: 7}) {
			t.Fatalf("resubscribe: %+v, want since e1:7", r)
		}
		conn.sendJSON(map[string]any{"type": "subscribed", "id": r.ID, "channel": "room", "position": Position{Epoch: "e1", Offset: 9}, "recovered": true})
		conn.sendJSON(map[string]any{"type": "batch", "channel": "room", "publications": []any{pub("e1", 6), pub("e1", 7), pub("e1", 8), pub("e1", 9)}})
		conn.sendJSON(live("room", "e1", 9))
		conn.sendJSON(live("room", "e1", 10))
		if ev := <-got.subs; ev.Channel != "room" {
			t.Fatal(ev)
		}
		if ev := <-got.subs; !ev.Resumed || !ev.Recovered {
			t.Fatalf("after reconnect: %+v, want resumed and recovered", ev)
		}
		if o := got.offsets(); fmt.Sprint(o) != "[8 9 10]" {
			t.Fatalf("delivered %v after the resume, want [8 9 10]: no gap, no duplicate", o)
		}
		if last := c.Last("room"); last != (Position{Epoch: "e1", Offset: 10}) {
			t.Fatalf("Last = %+v", last)
		}
		conn.end(errors.New("reset"))

		// Back again, but the history is gone: the app is told.
		conn = f.accept(t, time.Hour, time.Hour)
		r = recv[wire.Subscribe](t, conn)
		conn.sendJSON(map[string]any{"type": "subscribed", "id": r.ID, "channel": "room", "position": Position{Epoch: "e2", Offset: 3}, "recovered": false})
		conn.sendJSON(live("room", "e2", 4))
		if ev := <-got.subs; !ev.Resumed || ev.Recovered {
			t.Fatalf("after losing history: %+v, want resumed and not recovered", ev)
		}
		if o := got.offsets(); fmt.Sprint(o) != "[4]" {
			t.Fatalf("delivered %v in the new epoch, want [4]", o)
		}
	})
}

// publishing runs a Publish in the background.
func publishing(c *Client, data string, opts *PublishOptions) <-chan outcome {
	out := make(chan outcome, 1)
	go func() {
		res, err := c.Publish(context.Background(), "room", json.RawMessage(data), opts)
		out <- outcome{res, err}
	}()
	return out
}

func TestSendQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{QueueSize: 3, Backoff: func(int) time.Duration { return time.Second }})
		running(t, c)
		call := f.next(t) // offline: the dial hangs
		first := publishing(c, `{"n":1}`, &PublishOptions{Key: "k1"})
		expiring := publishing(c, `{"n":2}`, &PublishOptions{TTL: time.Second})
		old := publishing(c, `{"x":1}`, &PublishOptions{Latest: "pos"})
		synctest.Wait()
		if _, err := c.Publish(context.Background(), "room", json.RawMessage(`{"n":3}`), nil); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("publish into a full queue: %v, want ErrQueueFull", err)
		}
		latest := publishing(c, `{"x":2}`, &PublishOptions{Latest: "pos"})
		if r := <-old; !errors.Is(r.err, ErrReplaced) {
			t.Fatalf("older Latest publish: %v, want ErrReplaced", r.err)
		}
		if r := <-expiring; !errors.Is(r.err, ErrExpired) {
			t.Fatalf("publish unsent past its TTL: %v, want ErrExpired", r.err)
		}

		conn := f.welcome(call, time.Hour, time.Hour)
		p1, p2 := recv[wire.Publish](t, conn), recv[wire.Publish](t, conn)
		if p1.Key != "k1" || string(p1.Data) != `{"n":1}` || string(p2.Data) != `{"x":2}` || p2.Key == "" {
			t.Fatalf("sent %+v then %+v", p1, p2)
		}
		conn.sendJSON(map[string]any{"type": "ack", "id": p1.ID, "pos": Position{Epoch: "e1", Offset: 1}})
		if r := <-first; r.err != nil || r.res.Pos.Offset != 1 {
			t.Fatalf("first publish: %+v", r)
		}
		// Lost before the second ack: it is sent again with its key.
		conn.end(errors.New("reset"))
		conn = f.accept(t, time.Hour, time.Hour)
		again := recv[wire.Publish](t, conn)
		if again.Key != p2.Key || string(again.Data) != `{"x":2}` {
			t.Fatalf("resent %+v, want the key %q again", again, p2.Key)
		}
		conn.sendJSON(map[string]any{"type": "ack", "id": again.ID, "pos": Position{Epoch: "e1", Offset: 2}, "duplicate": true})
		if r := <-latest; r.err != nil || !r.res.Duplicate {
			t.Fatalf("resent publish: %+v", r)
		}
		conn.sendJSON(map[string]any{"type": "error", "id": 99, "code": "forbidden", "message": "no"})
		refused := publishing(c, `{}`, nil)
		p := recv[wire.Publish](t, conn)
		conn.sendJSON(map[string]any{"type": "error", "id": p.ID, "code": "forbidden", "message": "no"})
		var se *ServerError
		if r := <-refused; !errors.As(r.err, &se) || se.Code != "forbidden" {
			t.Fatalf("refused publish: %v", r.err)
		}
	})
}

// When Run ends, every waiting call fails with ErrClosed.
func TestCloseFailsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		f.next(t)
		waiting := publishing(c, `{}`, nil)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
		if r := <-waiting; !errors.Is(r.err, ErrClosed) {
			t.Fatalf("waiting publish: %v", r.err)
		}
		if _, err := c.Subscribe(context.Background(), "x", nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe after Run: %v", err)
		}
	})
}

// A subscription the server refuses fails Subscribe and is reported.
func TestSubscribeRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		opts := &Options{}
		got := newCollector(opts)
		c := newTestClient(f, s, opts)
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		go func() {
			r := recv[wire.Subscribe](t, conn)
			conn.sendJSON(map[string]any{"type": "error", "id": r.ID, "code": "forbidden", "message": "not you"})
		}()
		_, err := c.Subscribe(context.Background(), "$secret", nil)
		var se *ServerError
		if !errors.As(err, &se) || se.Code != "forbidden" {
			t.Fatalf("Subscribe: %v, want forbidden", err)
		}
		if ev := <-got.subs; ev.Channel != "$secret" || !errors.As(ev.Err, &se) {
			t.Fatalf("OnSubscribed: %+v", ev)
		}
		c.mu.Lock()
		kept := c.subs["$secret"] != nil
		c.mu.Unlock()
		if kept {
			t.Fatal("a refused subscription stayed registered")
		}
	})
}

// Unsubscribe tells the server and stops deliveries; a reconnect does not
// resubscribe the channel.
func TestUnsubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		opts := &Options{Backoff: func(int) time.Duration { return 0 }}
		got := newCollector(opts)
		c := newTestClient(f, s, opts)
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		go c.Subscribe(context.Background(), "room", nil)
		r := recv[wire.Subscribe](t, conn)
		conn.sendJSON(map[string]any{"type": "subscribed", "id": r.ID, "channel": "room", "position": Position{Epoch: "e1", Offset: 0}})
		<-got.subs
		c.Unsubscribe("room")
		if r := recv[wire.Unsubscribe](t, conn); r.Channel != "room" {
			t.Fatalf("sent %+v, want an unsubscribe", r)
		}
		conn.sendJSON(live("room", "e1", 1))
		if o := got.offsets(); len(o) != 0 {
			t.Fatalf("delivered %v after Unsubscribe", o)
		}
		conn.end(errors.New("reset"))
		conn = f.accept(t, time.Hour, time.Hour)
		s.await(t, StateOpen)
		synctest.Wait()
		select {
		case r := <-conn.fromClient:
			t.Fatalf("sent %s after reconnecting, want nothing", r)
		default:
		}
	})
}

// Publishes nobody waits for still expire: they do not hold the queue.
func TestExpiredFreeTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{QueueSize: 1, QueueTTL: time.Second})
		running(t, c)
		f.next(t) // offline: the dial hangs
		ack, err := c.Send("room", json.RawMessage(`{}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Send("room", json.RawMessage(`{}`), nil); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("second Send: %v, want ErrQueueFull", err)
		}
		time.Sleep(time.Second)
		if _, err := c.Send("room", json.RawMessage(`{}`), nil); err != nil {
			t.Fatalf("Send once the first expired: %v", err)
		}
		if _, err := ack.Wait(context.Background()); !errors.Is(err, ErrExpired) {
			t.Fatalf("Wait on the expired one: %v", err)
		}
	})
}
