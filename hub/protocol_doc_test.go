package hub

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"testing"
)

// The examples in PROTOCOL.md are the protocol's contract: each must be
// accepted by the code that reads it and say what the code would say.

var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)\n```")

// serverTypes maps each server message type to the struct the hub encodes.
var serverTypes = map[string]func() any{
	"welcome":    func() any { return &welcomeMsg{} },
	"subscribed": func() any { return &subscribedMsg{} },
	"batch":      func() any { return &batchMsg{} },
	"message":    func() any { return &messageMsg{} },
	"ack":        func() any { return &ackMsg{} },
	"presence":   func() any { return &presenceMsg{} },
	"join":       func() any { return &memberMsg{} },
	"leave":      func() any { return &memberMsg{} },
	"error":      func() any { return &errorMsg{} },
}

func TestProtocolExamples(t *testing.T) {
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := jsonBlock.FindAllSubmatch(doc, -1)
	if len(blocks) < 15 {
		t.Fatalf("found %d JSON examples in PROTOCOL.md, want every message type's", len(blocks))
	}
	seen := map[string]bool{}
	for _, block := range blocks {
		example := block[1]
		var env struct {
			Type    string
			Members json.RawMessage
		}
		if err := json.Unmarshal(example, &env); err != nil {
			t.Fatalf("example %s is not JSON: %v", example, err)
		}
		seen[env.Type] = true
		switch {
		case env.Type == "ping" || env.Type == "pong":
			// the core's heartbeat; package pulse checks these examples
		case env.Type == "presence" && env.Members == nil, serverTypes[env.Type] == nil:
			checkClientExample(t, example)
		default:
			checkServerExample(t, example, serverTypes[env.Type]())
		}
	}
	for _, typ := range []string{"welcome", "hello", "subscribe", "subscribed", "batch", "message", "unsubscribe",
		"publish", "ack", "presence", "join", "leave", "ping", "pong", "error"} {
		if !seen[typ] {
			t.Errorf("PROTOCOL.md has no example of %q", typ)
		}
	}
}

// checkClientExample: the server's decoder accepts it.
func checkClientExample(t *testing.T, example []byte) {
	t.Helper()
	if _, err := decodeRequest(example); err != nil {
		t.Errorf("client example %s is refused: %v", example, err)
	}
}

// checkServerExample: it decodes into the hub's own type with no unknown
// field, and encoding that gives the same JSON back.
func checkServerExample(t *testing.T, example []byte, msg any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(example))
	dec.DisallowUnknownFields()
	if err := dec.Decode(msg); err != nil {
		t.Errorf("server example %s does not match %T: %v", example, msg, err)
		return
	}
	var want, got any
	json.Unmarshal(example, &want)
	json.Unmarshal(encode(msg), &got)
	if !reflect.DeepEqual(want, got) {
		t.Errorf("server example %s: the hub would send %s", example, encode(msg))
	}
}
