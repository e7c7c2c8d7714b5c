package web

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulse-go/pulse/hub"
)

func inputEvent(t *testing.T, in input) hub.Event {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return hub.Event{Type: hub.EventPublication, Publication: hub.Publication{Data: data}}
}

func TestGameRules(t *testing.T) {
	g := newGame(1)
	g.star = point{X: 10_000, Y: 10_000} // out of reach
	ann := hub.Member{ID: "a1", Client: "ann", Info: json.RawMessage(`{"color":"#e91e63"}`)}
	g.apply(hub.Event{Type: hub.EventJoin, Member: ann})
	g.apply(hub.Event{Type: hub.EventJoin, Member: hub.Member{ID: "b2", Info: json.RawMessage(`{"color":"red;x"}`)}})
	a, b := g.players["a1"], g.players["b2"]
	if a == nil || b == nil {
		t.Fatalf("players after two joins: %v", g.players)
	}
	if a.Color != "#e91e63" || a.Name != "ann" || a.RTT != -1 {
		t.Errorf("ann = %+v", *a)
	}
	if b.Name != "player" || b.Color == "red;x" {
		t.Errorf("unnamed player with a bad color = %+v", *b)
	}

	a.X, a.Y = 100, 100
	g.apply(inputEvent(t, input{ID: "a1", DX: 3, DY: 4, RTT: 12.34})) // clamped to a unit vector
	g.apply(inputEvent(t, input{ID: "nobody", DX: 1}))                // ignored
	forged := inputEvent(t, input{ID: "a1", DX: -1})
	forged.Publication.From = "b2" // b2's client writes a1's id: it steers b2
	g.apply(forged)
	if b.dx != -1 || a.dx == -1 {
		t.Errorf("input from b2 naming a1: a1 moves %v, b2 moves %v; want only b2 to move", a.dx, b.dx)
	}
	g.step(time.Second)
	if math.Abs(a.X-(100+0.6*playerSpeed)) > 1e-9 || math.Abs(a.Y-(100+0.8*playerSpeed)) > 1e-9 || a.RTT != 12.3 {
		t.Errorf("after one second at (0.6, 0.8): %+v", *a)
	}
	g.step(time.Minute)
	if a.X != arenaW-playerR || a.Y != arenaH-playerR {
		t.Errorf("a player runs into the corner and stops there, got (%v, %v)", a.X, a.Y)
	}

	g.star = point{X: a.X - playerR, Y: a.Y}
	g.step(GameTick)
	if a.Score != 1 || g.star == (point{X: a.X - playerR, Y: a.Y}) {
		t.Errorf("touching the star: score %d, star %v", a.Score, g.star)
	}

	g.apply(hub.Event{Type: hub.EventLeave, Member: ann})
	if len(g.snapshot().Players) != 1 {
		t.Errorf("after ann left: %+v", g.snapshot().Players)
	}
}

func TestInboxKeepsPresenceWhenFull(t *testing.T) {
	g := newGame(1)
	for range maxInbox + 10 {
		g.deliver(hub.Event{Type: hub.EventPublication})
	}
	g.deliver(hub.Event{Type: hub.EventLeave, Member: hub.Member{ID: "x"}})
	evs := g.drain()
	if len(evs) != maxInbox+1 || evs[maxInbox].Type != hub.EventLeave || g.dropped != 10 {
		t.Fatalf("inbox of %d events, last %v, %d dropped", len(evs), evs[len(evs)-1].Type, g.dropped)
	}
}

// recorder collects the publications of a channel.
type recorder struct {
	mu   sync.Mutex
	data []json.RawMessage
}

func (r *recorder) deliver(ev hub.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Type == hub.EventPublication {
		r.data = append(r.data, ev.Publication.Data)
	}
}

func (r *recorder) take() []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.data
	r.data = nil
	return d
}

func lastState(t *testing.T, r *recorder) state {
	t.Helper()
	d := r.take()
	if len(d) == 0 {
		t.Fatal("no game state published")
	}
	var s state
	if err := json.Unmarshal(d[len(d)-1], &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunDrivesDashboardAndGame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		broker := hub.NewMemory(nil)
		h := hub.New(&hub.Options{Broker: broker})
		var dash, game recorder
		for channel, r := range map[string]*recorder{DashboardChannel: &dash, GameStateChannel: &game} {
			if _, err := broker.Subscribe(ctx, channel, r.deliver); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error)
		go func() { done <- Run(ctx, h) }()

		time.Sleep(time.Second + time.Millisecond)
		if got := len(dash.take()); got != 10 {
			t.Errorf("%d dashboard samples in one second, want 10", got)
		}
		if got := len(game.take()); got != int(time.Second/GameTick) {
			t.Errorf("%d game states in one second, want %d", got, time.Second/GameTick)
		}

		ann := hub.Member{ID: "a1", Client: "ann"}
		broker.Join(ctx, GameInputChannel, ann)
		time.Sleep(GameTick)
		start := lastState(t, &game)
		if len(start.Players) != 1 {
			t.Fatalf("after a join: %+v", start.Players)
		}
		dx := 1.0
		if start.Players[0].X > arenaW/2 {
			dx = -1
		}
		data, _ := json.Marshal(input{ID: "a1", DX: dx, RTT: 5})
		h.Publish(ctx, GameInputChannel, data, hub.PublishOptions{})
		time.Sleep(250 * time.Millisecond)
		moved := lastState(t, &game).Players[0]
		if math.Abs(moved.X-start.Players[0].X) < 50 || moved.RTT != 5 {
			t.Errorf("after 250 ms of input %v: from %+v to %+v", dx, *start.Players[0], *moved)
		}

		broker.Leave(ctx, GameInputChannel, ann)
		time.Sleep(GameTick)
		if s := lastState(t, &game); len(s.Players) != 0 {
			t.Errorf("after the leave: %+v", s.Players)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
