package pulse

import (
	"encoding"
	"strings"
	"testing"
)

var (
	_ encoding.TextMarshaler   = HeartbeatKind(0)
	_ encoding.TextUnmarshaler = (*HeartbeatKind)(nil)
)

// Every kind's name reads back as the same kind.
func TestHeartbeatKindText(t *testing.T) {
	for kind, name := range map[HeartbeatKind]string{HeartbeatFrame: "frame", HeartbeatApp: "app", HeartbeatText: "text"} {
		text, err := kind.MarshalText()
		if err != nil || string(text) != name {
			t.Errorf("%d.MarshalText() = %q, %v; want %q", int(kind), text, err, name)
		}
		var got HeartbeatKind
		if err := got.UnmarshalText(text); err != nil || got != kind {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, got, err, kind)
		}
	}
}

// Bad names and kinds fail with an error naming the value, and leave the
// kind as it was.
func TestHeartbeatKindTextErrors(t *testing.T) {
	for _, text := range []string{"", "Frame", "ping", "frame ", "1"} {
		kind := HeartbeatApp
		err := kind.UnmarshalText([]byte(text))
		if err == nil || !strings.Contains(err.Error(), `"`+text+`"`) || !strings.Contains(err.Error(), "want frame, app or text") {
			t.Errorf("UnmarshalText(%q) = %v, want an error naming it and the valid kinds", text, err)
		}
		if kind != HeartbeatApp {
			t.Errorf("UnmarshalText(%q) changed the kind to %v", text, kind)
		}
	}
	for _, kind := range []HeartbeatKind{0, -1, HeartbeatText + 1} {
		if text, err := kind.MarshalText(); err == nil {
			t.Errorf("HeartbeatKind(%d).MarshalText() = %q, want an error", int(kind), text)
		}
	}
}
