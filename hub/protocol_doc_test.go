package hub

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/pulse-go/pulse/wire"
)

// The examples in PROTOCOL.md are the protocol's contract: each must be
// accepted by the code that reads it and say what the code would say.

var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)\n```")

// Both ends decode with package wire: a client example must pass the
// hub's decodeRequest (decoding and checks), a server example the Go
// client's wire.DecodeServer; either must give the same JSON back when
// encoded again, so no field of an example is unknown to the code.

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
		client, server := checkClientExample(example), checkServerExample(example)
		switch {
		case env.Type == wire.TypePing || env.Type == wire.TypePong:
			both(t, example, client, server) // they go both ways
		case env.Type == wire.TypePresence && env.Members == nil, client == nil:
			ok(t, example, client)
		default:
			ok(t, example, server)
		}
	}
	for _, typ := range []string{"welcome", "hello", "subscribe", "subscribed", "batch", "message", "unsubscribe",
		"publish", "ack", "presence", "join", "leave", "ping", "pong", "error", "refresh"} {
		if !seen[typ] {
			t.Errorf("PROTOCOL.md has no example of %q", typ)
		}
	}
}

func ok(t *testing.T, example []byte, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("example %s: %v", example, err)
	}
}

func both(t *testing.T, example []byte, client, server error) {
	t.Helper()
	ok(t, example, client)
	ok(t, example, server)
}

// checkClientExample: the hub accepts it, and says the same when encoding it.
func checkClientExample(example []byte) error {
	m, perr := decodeRequest(example)
	if perr != nil {
		return perr
	}
	return sameJSON(example, m)
}

// checkServerExample: the client decodes it, and says the same when encoding it.
func checkServerExample(example []byte) error {
	m, err := wire.DecodeServer(example)
	if err != nil {
		return err
	}
	return sameJSON(example, m)
}

func sameJSON(example []byte, m wire.Msg) error {
	var want, got any
	json.Unmarshal(example, &want)
	json.Unmarshal(wire.MustEncode(m), &got)
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("decoded as %T, which encodes as %s", m, wire.MustEncode(m))
	}
	return nil
}
