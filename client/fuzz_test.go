package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
)

// discard is a Transport that takes every write and reads nothing.
type discard struct{}

func (discard) ReadMessage() ([]byte, error)        { select {} }
func (discard) WriteMessage([]byte) error           { return nil }
func (discard) Close(pulse.CloseCode, string) error { return nil }

var receiveSeeds = []string{
	`{"type":"ping"}`,
	`{"type":"pong"}`,
	`{"type":"subscribed","id":1,"channel":"room","position":{"epoch":"e","offset":3},"recovered":true}`,
	`{"type":"message","channel":"room","pos":{"epoch":"e","offset":4},"data":{"text":"hi"}}`,
	`{"type":"batch","channel":"room","publications":[{"pos":{"epoch":"e","offset":5},"data":1},{"pos":{"epoch":"e","offset":6},"data":2}]}`,
	`{"type":"ack","id":2,"pos":{"epoch":"e","offset":7},"duplicate":true}`,
	`{"type":"error","id":3,"code":"forbidden","message":"no"}`,
	`{"type":"join","channel":"room","member":{"id":"m","client":"ann"}}`,
	`{"type":"welcome","session":"s","interval_ms":-5,"timeout_ms":0}`,
	`{"type":"batch","channel":"room","publications":null}`,
	`not json`,
	``,
}

// FuzzReceive: whatever a server sends after its welcome, the client's
// frame handling neither panics nor fails on it, except for a write error,
// which the discarding transport never gives.
func FuzzReceive(f *testing.F) {
	for _, seed := range receiveSeeds {
		f.Add([]byte(seed))
	}
	welcome, _ := json.Marshal(map[string]any{"type": "welcome", "session": "s1", "interval_ms": 1000, "timeout_ms": 1000})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New("ws://fuzz.invalid/ws", &Options{Name: "fuzz", OnMessage: func(Message) {}, OnPresence: func(string, Member, bool) {}})
		c.subs["room"] = &subscription{channel: "room", presence: true}
		s := newConnection(c, discard{}, "")
		now := time.Now()
		if err := s.receive(frame{data: welcome, at: now}); err != nil {
			t.Fatalf("welcome: %v", err)
		}
		if err := s.receive(frame{data: data, at: now}); err != nil {
			t.Fatalf("receive(%q): %v", data, err)
		}
	})
}
