package hub

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

var decodeCases = []struct {
	in   string
	code string // "" when the request is valid
}{
	{`{"type":"hello","client":"ann","info":{"color":"red"}}`, ""},
	{`{"type":"hello","id":1,"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}`, ""},
	{`{"type":"hello","token":7}`, wire.CodeBadRequest},
	{`{"type":"refresh","id":5,"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}`, ""},
	{`{"type":"refresh","id":5}`, wire.CodeBadRequest},
	{`{"type":"refresh","token":""}`, wire.CodeBadRequest},
	{`{"type":"subscribe","id":1,"channel":"room","since":{"epoch":"e1","offset":41}}`, ""},
	{`{"type":"subscribe","channel":"room","presence":true}`, ""},
	{`{"type":"unsubscribe","id":2,"channel":"room"}`, ""},
	{`{"type":"publish","id":3,"channel":"room","key":"k","data":{"text":"hi"}}`, ""},
	{`{"type":"presence","id":4,"channel":"room"}`, ""},
	{`{"type":"subscribe","channel":"room","extra":"ignored"}`, ""},
	{`{"type":"publish","channel":"room"}`, wire.CodeBadRequest},
	{`{"type":"publish","channel":"room","data":1,"key":"` + strings.Repeat("k", MaxKeyLength) + `"}`, ""},
	{`{"type":"publish","channel":"room","data":1,"key":"` + strings.Repeat("k", MaxKeyLength+1) + `"}`, wire.CodeBadRequest},
	{`{"type":"subscribe"}`, wire.CodeBadRequest},
	{`{"type":"subscribe","channel":"has space"}`, wire.CodeBadRequest},
	{`{"type":"subscribe","channel":"` + strings.Repeat("x", maxChannelName+1) + `"}`, wire.CodeBadRequest},
	{`{"type":"subscribe","channel":"bad\u0000"}`, wire.CodeBadRequest},
	{`{"type":"subscribe","channel":"room","since":{"offset":-1}}`, wire.CodeBadRequest},
	{`{"type":"teleport","channel":"room"}`, wire.CodeUnknownType},
	{`{"channel":"room"}`, wire.CodeBadRequest},
	{`{"type":"hello"} {"type":"hello"}`, wire.CodeBadRequest},
	{`{"type":`, wire.CodeBadRequest},
	{`[]`, wire.CodeBadRequest},
	{``, wire.CodeBadRequest},
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range decodeCases {
		_, err := decodeRequest([]byte(tc.in))
		code := ""
		if err != nil {
			code = err.code
		}
		if code != tc.code {
			t.Errorf("decodeRequest(%.60q): code %q (%v), want %q", tc.in, code, err, tc.code)
		}
	}
}

// FuzzDecodeRequest: never panics; a request it accepts has a known type
// and a valid channel wherever its type needs one.
func FuzzDecodeRequest(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRequest(data)
		if err != nil {
			if err.code != wire.CodeBadRequest && err.code != wire.CodeUnknownType {
				t.Fatalf("error code %q", err.code)
			}
			return
		}
		switch r := r.(type) {
		case wire.Hello, wire.Ping, wire.Pong:
		case wire.Refresh:
			if r.Token == "" {
				t.Fatal("accepted a refresh without a token")
			}
		case wire.Subscribe, wire.Unsubscribe, wire.PresenceQuery, wire.Publish:
			if channel := r.(wire.ChannelRequest).ChannelName(); checkChannel(channel) != nil {
				t.Fatalf("accepted channel %q", channel)
			}
		default:
			t.Fatalf("accepted %T", r)
		}
	})
}

// Bad input gets the documented error message, the connection goes on, and
// so does everyone else's.
func TestBadRequestsAnswered(t *testing.T) {
	env := startHub(t, nil, nil, &Options{MaxSubscriptions: 1})
	other := dial(t, env.addr())
	other.subscribe(t, "room", nil, false)
	c := dial(t, env.addr())
	cases := []struct {
		send string
		code string
	}{
		{`{"type":"publish","id":9,"channel":"room"`, wire.CodeBadRequest},
		{`{"type":"warp","id":9}`, wire.CodeUnknownType},
		{`{"type":"subscribe","id":9}`, wire.CodeBadRequest},
		{`{"type":"unsubscribe","id":9,"channel":"nowhere"}`, wire.CodeNotSubscribed},
		{`{"type":"hello","id":9,"client":"` + strings.Repeat("n", maxClientName+1) + `"}`, wire.CodeBadRequest},
	}
	for _, tc := range cases {
		c.sendRaw([]byte(tc.send))
		if m := expect[wire.Error](t, c); m.Code != tc.code {
			t.Fatalf("%s: error %+v, want code %s", tc.send, m, tc.code)
		}
	}
	c.mu.Lock()
	c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	c.mu.Unlock()
	if m := expect[wire.Error](t, c); m.Code != wire.CodeBadRequest {
		t.Fatalf("binary message: %+v, want bad_request", m)
	}
	c.subscribe(t, "a", nil, false)
	c.send(t, wire.Subscribe{ID: 5, Channel: "a"})
	if m := expect[wire.Error](t, c); m.Code != wire.CodeBadRequest || m.ID != 5 {
		t.Fatalf("second subscribe: %+v, want bad_request for id 5", m)
	}
	c.send(t, wire.Subscribe{ID: 6, Channel: "b"})
	if m := expect[wire.Error](t, c); m.Code != wire.CodeTooMany {
		t.Fatalf("subscribe over the limit: %+v, want too_many", m)
	}
	c.send(t, wire.Publish{ID: 7, Channel: "room", Data: []byte(`"still works"`)})
	expect[wire.Ack](t, c)
	if m := expect[wire.Message](t, other); string(m.Data) != `"still works"` {
		t.Fatalf("other client got %+v", m)
	}
}

func TestOversizedMessageClosed(t *testing.T) {
	env := startHub(t, &pulse.Options{MaxMessageSize: 512}, nil, nil)
	other := dial(t, env.addr())
	other.subscribe(t, "room", nil, false)
	c := dial(t, env.addr())
	c.sendRaw([]byte(`{"type":"publish","channel":"room","data":"` + strings.Repeat("x", 600) + `"}`))
	if code := c.closeCode(t); code != int(pulse.CloseMessageTooBig) {
		t.Fatalf("close code %d, want %d", code, pulse.CloseMessageTooBig)
	}
	if _, err := env.hub.Publish(t.Context(), "room", []byte(`1`), PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	expect[wire.Message](t, other)
}

func TestAuthorizeRefuses(t *testing.T) {
	serverOnly := func(p Peer, a Action, channel string) error {
		if a == ActionPublish && strings.HasPrefix(channel, "$") {
			return errors.New("channels starting with $ are published by the server only")
		}
		return nil
	}
	env := startHub(t, nil, nil, &Options{Authorize: serverOnly})
	c := dial(t, env.addr())
	c.send(t, wire.Publish{ID: 1, Channel: "$ticker", Data: []byte(`1`)})
	if m := expect[wire.Error](t, c); m.Code != wire.CodeForbidden || !strings.Contains(m.Message, "server only") {
		t.Fatalf("publish to $ticker: %+v, want forbidden", m)
	}
	c.subscribe(t, "$ticker", nil, false)
}

func TestPublishHTTP(t *testing.T) {
	env := startHub(t, nil, nil, nil)
	sub := dial(t, env.addr())
	sub.subscribe(t, "news", nil, false)
	url := env.http.URL + "/api/publish"
	cases := []struct {
		method, key, body string
		status            int
	}{
		{"GET", "secret", "", http.StatusMethodNotAllowed},
		{"POST", "", `{"channel":"news","data":1}`, http.StatusUnauthorized},
		{"POST", "wrong", `{"channel":"news","data":1}`, http.StatusUnauthorized},
		{"POST", "secret", `{"channel":"news"`, http.StatusBadRequest},
		{"POST", "secret", `{"channel":"news"}`, http.StatusBadRequest},
		{"POST", "secret", `{"channel":"","data":1}`, http.StatusBadRequest},
		{"POST", "secret", `{"channel":"news","data":1,"key":"` + strings.Repeat("k", MaxKeyLength+1) + `"}`, http.StatusBadRequest},
		{"POST", "secret", `{"channel":"news","data":"` + strings.Repeat("x", maxPublishBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"POST", "secret", `{"channel":"news","data":{"headline":"ok"}}`, http.StatusOK},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s key %q body %.40q: status %d, want %d", tc.method, tc.key, tc.body, resp.StatusCode, tc.status)
		}
	}
	if m := expect[wire.Message](t, sub); string(m.Data) != `{"headline":"ok"}` {
		t.Fatalf("subscriber got %+v", m)
	}
}

// slowBroker is a Memory whose Subscribe to channel "slow" waits until
// released, like a remote broker on a slow network.
type slowBroker struct {
	*Memory
	release chan struct{}
}

func (b slowBroker) Subscribe(ctx context.Context, channel string, deliver func(Event)) (func(), error) {
	if channel == "slow" {
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.Memory.Subscribe(ctx, channel, deliver)
}

// A broker slow to subscribe one channel holds up only that channel's
// subscribers.
func TestSlowBrokerSubscribeBlocksOnlyItsChannel(t *testing.T) {
	broker := slowBroker{Memory: NewMemory(nil), release: make(chan struct{})}
	env := startHub(t, nil, nil, &Options{Broker: broker})
	waiting := dial(t, env.addr())
	waiting.send(t, wire.Subscribe{ID: 1, Channel: "slow"})
	other := dial(t, env.addr())
	other.subscribe(t, "fast", nil, false) // answered while "slow" waits
	select {
	case m := <-waiting.in:
		t.Fatalf("the slow subscribe was answered before its broker was: %+v", m)
	default:
	}
	close(broker.release)
	if m := expect[wire.Subscribed](t, waiting); m.Channel != "slow" {
		t.Fatalf("got %+v, want the slow channel's answer", m)
	}
}
