package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var recovered = false

// Each row is a message as it travels and the value it decodes to; the
// rows also seed FuzzDecode.
var roundTrips = []struct {
	data   string
	server bool // sent by the server (DecodeServer), else by a client
	want   Msg
}{
	{`{"type":"hello","id":1,"client":"ann","info":{"c":1},"session":"ab"}`, false, Hello{ID: 1, Client: "ann", Info: json.RawMessage(`{"c":1}`), Session: "ab"}},
	{`{"type":"hello","id":1,"token":"eyJ.x.y"}`, false, Hello{ID: 1, Token: "eyJ.x.y"}},
	{`{"type":"refresh","id":6,"token":"eyJ.x.y"}`, false, Refresh{ID: 6, Token: "eyJ.x.y"}},
	{`{"type":"ack","id":1,"session":"s","member_id":"m","user":"ann"}`, true, Ack{ID: 1, Session: "s", Member: "m", User: "ann"}},
	{`{"type":"join","channel":"room","member":{"id":"m","user":"u1","client":"ann"}}`, true, Join{Channel: "room", Member: Member{ID: "m", User: "u1", Client: "ann"}}},
	{`{"type":"subscribe","id":2,"channel":"room","since":{"epoch":"e","offset":4},"presence":true}`, false, Subscribe{ID: 2, Channel: "room", Since: &Position{Epoch: "e", Offset: 4}, Presence: true}},
	{`{"type":"unsubscribe","id":3,"channel":"room"}`, false, Unsubscribe{ID: 3, Channel: "room"}},
	{`{"type":"publish","id":4,"channel":"room","data":"hi","key":"k"}`, false, Publish{ID: 4, Channel: "room", Data: json.RawMessage(`"hi"`), Key: "k"}},
	{`{"type":"presence","id":5,"channel":"room"}`, false, PresenceQuery{ID: 5, Channel: "room"}},
	{`{"type":"ping"}`, false, Ping{}},
	{`{"type":"pong"}`, true, Pong{}},
	{`{"type":"welcome","session":"s","member_id":"m","interval_ms":25000,"timeout_ms":10000}`, true, Welcome{Session: "s", Member: "m", IntervalMS: 25000, TimeoutMS: 10000}},
	{`{"type":"subscribed","id":2,"channel":"room","position":{"epoch":"e","offset":9},"recovered":false}`, true, Subscribed{ID: 2, Channel: "room", Position: Position{Epoch: "e", Offset: 9}, Recovered: &recovered}},
	{`{"type":"message","channel":"room","pos":{"epoch":"e","offset":10},"data":{"t":1},"from":"m"}`, true, Message{Channel: "room", Publication: Publication{Pos: Position{Epoch: "e", Offset: 10}, Data: json.RawMessage(`{"t":1}`), From: "m"}}},
	{`{"type":"batch","channel":"room","publications":[{"pos":{"epoch":"e","offset":1},"data":1}]}`, true, Batch{Channel: "room", Publications: []Publication{{Pos: Position{Epoch: "e", Offset: 1}, Data: json.RawMessage(`1`)}}}},
	{`{"type":"ack","id":4,"pos":{"epoch":"e","offset":11},"duplicate":true}`, true, Ack{ID: 4, Pos: &Position{Epoch: "e", Offset: 11}, Duplicate: true}},
	{`{"type":"error","id":4,"code":"forbidden","message":"no"}`, true, Error{ID: 4, Code: CodeForbidden, Message: "no"}},
	{`{"type":"presence","id":5,"channel":"room","members":[{"id":"m","client":"ann"}]}`, true, Presence{ID: 5, Channel: "room", Members: []Member{{ID: "m", Client: "ann"}}}},
	{`{"type":"join","channel":"room","member":{"id":"m","client":"ann"}}`, true, Join{Channel: "room", Member: Member{ID: "m", Client: "ann"}}},
	{`{"type":"leave","channel":"room","member":{"id":"m","client":""}}`, true, Leave{Channel: "room", Member: Member{ID: "m"}}},
}

func decodeFor(server bool) func([]byte) (Msg, error) {
	if server {
		return DecodeServer
	}
	return DecodeRequest
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrips {
		got, err := decodeFor(tc.server)([]byte(tc.data))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decode %s = %#v, %v; want %#v", tc.data, got, err, tc.want)
			continue
		}
		if data := MustEncode(got); string(data) != tc.data {
			t.Errorf("encode %#v = %s, want %s", got, data, tc.data)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	var unknown *UnknownTypeError
	for _, tc := range []struct {
		data string
		test func(error) bool
	}{
		{`{"type":"welcome"}`, func(err error) bool { return errors.As(err, &unknown) && unknown.Type == "welcome" }},
		{`{"channel":"room"}`, func(err error) bool { return errors.Is(err, ErrNoType) }},
		{`{"type":"subscribe","since":{"offset":-1}}`, func(err error) bool { return err != nil }},
		{`{"type":"hello"} {}`, func(err error) bool { return err != nil }},
		{`[]`, func(err error) bool { return err != nil }},
		{``, func(err error) bool { return err != nil }},
	} {
		if _, err := DecodeRequest([]byte(tc.data)); !tc.test(err) {
			t.Errorf("DecodeRequest(%s): unexpected error %v", tc.data, err)
		}
	}
}

func TestEncodeEmptyAndInvalid(t *testing.T) {
	if got := string(MustEncode(Ping{})); got != `{"type":"ping"}` {
		t.Errorf("ping encodes as %s", got)
	}
	if _, err := Encode(Publish{Channel: "c", Data: json.RawMessage(`{bad`)}); err == nil {
		t.Error("a publish of invalid JSON encoded without error")
	}
}

// FuzzDecode: whatever arrives, decoding never panics, and what decodes
// encodes to JSON that decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, tc := range roundTrips {
		f.Add([]byte(tc.data), tc.server)
	}
	f.Fuzz(func(t *testing.T, data []byte, server bool) {
		m, err := decodeFor(server)(data)
		if err != nil {
			return
		}
		again, err := decodeFor(server)(MustEncode(m))
		if err != nil {
			t.Fatalf("%s decoded to %#v, whose encoding does not decode: %v", data, m, err)
		}
		if !reflect.DeepEqual(normal(t, m), normal(t, again)) {
			t.Fatalf("%s: %#v encodes and decodes as %#v", data, m, again)
		}
	})
}

// normal is m as generic JSON, so that equal RawMessages spelled apart compare equal.
func normal(t *testing.T, m Msg) any {
	var v any
	if err := json.Unmarshal(MustEncode(m), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRequestMethods: every request a client may send but Ping and Pong
// gives its id through Request, and those that name a channel give it
// through ChannelRequest.
func TestRequestMethods(t *testing.T) {
	channels := map[string]bool{TypeSubscribe: true, TypeUnsubscribe: true, TypePublish: true, TypePresence: true}
	for typ := range requests {
		m, err := DecodeRequest([]byte(`{"type":"` + typ + `","id":7,"channel":"c","data":1,"token":"t"}`))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		r, ok := m.(Request)
		if typ == TypePing || typ == TypePong {
			if ok {
				t.Errorf("%T is a Request: it carries no id", m)
			}
			continue
		}
		if !ok || r.RequestID() != 7 {
			t.Errorf("%T: not a Request with id 7 (ok %v)", m, ok)
		}
		c, ok := m.(ChannelRequest)
		if ok != channels[typ] || ok && c.ChannelName() != "c" {
			t.Errorf("%T: ChannelRequest %v, want %v with channel \"c\"", m, ok, channels[typ])
		}
	}
}
