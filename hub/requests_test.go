package hub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// stalledBroker is a memory broker whose Publish blocks until its context
// ends or release is closed: a remote broker that has stopped answering.
type stalledBroker struct {
	*Memory
	release chan struct{}
}

func (b *stalledBroker) Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (PublishResult, error) {
	select {
	case <-ctx.Done():
		return PublishResult{}, ctx.Err()
	case <-b.release:
		return b.Memory.Publish(ctx, channel, data, opts)
	}
}

// A broker that stalls for longer than the liveness bound costs the
// client "unavailable" answers, never its connection: the reader goes on
// reading the heartbeat answers while the requests wait.
func TestStalledBrokerAnswersUnavailable(t *testing.T) {
	const interval, timeout = 200 * time.Millisecond, 200 * time.Millisecond
	broker := &stalledBroker{Memory: NewMemory(nil), release: make(chan struct{})}
	env := startHub(t, &pulse.Options{Interval: interval, Timeout: timeout}, nil, &Options{Broker: broker})
	c := dial(t, env.addr())
	start := time.Now()
	for id := range uint64(maxPending + 8) { // more than wait: the reader waits too
		c.send(t, wire.Publish{ID: id + 1, Channel: "room", Data: []byte(`1`)})
	}
	for id := range uint64(maxPending + 8) {
		m := expect[wire.Error](t, c)
		if m.Code != wire.CodeUnavailable || m.ID != id+1 {
			t.Fatalf("answer %+v, want unavailable for request %d", m, id+1)
		}
	}
	// Stalled for three liveness bounds, and still connected.
	for time.Since(start) < 3*(interval+timeout) {
		c.send(t, wire.Publish{ID: 100, Channel: "room", Data: []byte(`1`)})
		if m := expect[wire.Error](t, c); m.Code != wire.CodeUnavailable {
			t.Fatalf("answer %+v, want unavailable", m)
		}
	}
	close(broker.release)
	c.send(t, wire.Publish{ID: 101, Channel: "room", Data: []byte(`1`)})
	if m := expect[wire.Ack](t, c); m.ID != 101 {
		t.Fatalf("after the broker came back: %+v", m)
	}
	select {
	case err := <-env.closes:
		t.Fatalf("connection closed with %v while the broker stalled", err)
	default:
	}
}

// A client that sends many requests before reading any answer is not a
// slow consumer: its answers wait for room, and its requests for the
// worker.
func TestPipelinedPublishesAllAcked(t *testing.T) {
	env := startHub(t, nil, nil, &Options{PublishRate: 1e6, PublishBurst: 1e6})
	const n = 1000
	d := websocket.Dialer{Subprotocols: []string{pulse.Subprotocol}}
	ws, _, err := d.Dial("ws://"+env.addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for id := 1; id <= n; id++ {
		msg := fmt.Appendf(nil, `{"type":"publish","id":%d,"channel":"room","data":%d}`, id, id)
		if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatalf("publish %d: %v", id, err)
		}
	}
	acks := 0
	for acks < n {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d acks: %v", acks, err)
		}
		switch m, _ := wire.DecodeServer(data); m := m.(type) {
		case wire.Ack:
			acks++
			if m.ID != uint64(acks) {
				t.Fatalf("ack %d for request %d: out of order", acks, m.ID)
			}
		case wire.Ping:
			ws.WriteMessage(websocket.TextMessage, wire.MustEncode(wire.Pong{}))
		case wire.Welcome:
		default:
			t.Fatalf("unexpected %T %+v", m, m)
		}
	}
}

// A subscriber that publishes right after subscribing gets its own message
// before the ack, even while its subscription is still replaying history.
func TestOwnMessageBeforeAck(t *testing.T) {
	env := startHub(t, nil, nil, nil)
	publishN(t, env.hub, "room", 0, 200)
	_, top, _ := env.broker.History(context.Background(), "room", Position{})
	for try := range 30 {
		c := dial(t, env.addr())
		since := Position{Epoch: top.Epoch, Offset: 1}
		c.send(t, wire.Subscribe{ID: 1, Channel: "room", Since: &since})
		c.send(t, wire.Publish{ID: 2, Channel: "room", Data: fmt.Appendf(nil, `"mine %d"`, try)})
		sawOwn := false
		for {
			switch m := c.next(t).(type) {
			case wire.Message:
				sawOwn = sawOwn || string(m.Data) == fmt.Sprintf(`"mine %d"`, try)
			case wire.Ack:
				if !sawOwn {
					t.Fatalf("try %d: the ack came before the publisher's own message", try)
				}
			}
			if sawOwn {
				break
			}
		}
		if m := expect[wire.Ack](t, c); m.ID != 2 {
			t.Fatalf("try %d: %+v", try, m)
		}
	}
}
