package hub

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// testTokens is a Verifier whose tokens say what they prove: "ann:1h" is
// valid for ann for an hour; "expired" has expired; anything else is
// refused. Every user may subscribe to room.* and news, and publish to
// room.* only.
type testTokens struct{}

func (testTokens) Verify(token string) (Identity, error) {
	if token == "expired" {
		return Identity{}, ErrTokenExpired
	}
	user, life, ok := strings.Cut(token, ":")
	if ok && life == "zero" { // a verifier that leaves Expires zero
		return Identity{User: user, Channels: []string{"room.*"}}, nil
	}
	d, err := time.ParseDuration(life)
	if !ok || err != nil {
		return Identity{}, errors.New("bad signature")
	}
	return Identity{User: user, Expires: time.Now().Add(d), Channels: []string{"room.*", "news"},
		Publish: []string{"room.*"}, Claims: map[string]any{"sub": user, "team": "blue"}}, nil
}

func startAuthHub(t *testing.T, po *pulse.Options, ho *Options) *testEnv {
	t.Helper()
	if ho == nil {
		ho = &Options{}
	}
	ho.Verifier = testTokens{}
	return startHub(t, po, nil, ho)
}

// upgrade tries a connection with the given subprotocols, query and
// header, and returns the connection, or nil and the HTTP answer.
func (e *testEnv) upgrade(t *testing.T, protocols []string, query string, h http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+e.addr()+"/ws"+query, h)
	if err == nil {
		resp.Body.Close()
		t.Cleanup(func() { ws.Close() })
		return ws, resp
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return nil, resp
}

// A bad token at the upgrade, or none from a plain client, is a 401
// with a JSON reason, and no WebSocket.
func TestUpgradeRefusedWithoutValidToken(t *testing.T) {
	env := startAuthHub(t, nil, nil)
	pulseV1 := []string{pulse.Subprotocol}
	for _, tc := range []struct {
		name      string
		protocols []string
		query     string
		header    http.Header
		reason    string
	}{
		{"plain, no token", nil, "", nil, "token is required"},
		{"empty ?token=", pulseV1, "?token=", nil, "empty token"},
		{"bad ?token=", pulseV1, "?token=forged", nil, "bad signature"},
		{"expired bearer", nil, "", http.Header{"Authorization": {"Bearer expired"}}, "token expired"},
		{"bad bearer", pulseV1, "", http.Header{"Authorization": {"Bearer forged"}}, "bad signature"},
	} {
		ws, resp := env.upgrade(t, tc.protocols, tc.query, tc.header)
		if ws != nil {
			t.Errorf("%s: upgraded", tc.name)
			continue
		}
		var body struct{ Error string }
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(data, &body) != nil || !strings.Contains(body.Error, tc.reason) {
			t.Errorf("%s: %d %s, want 401 with a JSON error saying %q", tc.name, resp.StatusCode, data, tc.reason)
		}
	}
}

// A plain client with a good token is in; the welcome names the user.
func TestUpgradeToken(t *testing.T) {
	env := startAuthHub(t, nil, nil)
	for _, h := range []struct {
		query  string
		header http.Header
	}{{"?token=ann:1h", nil}, {"", http.Header{"Authorization": {"Bearer ann:1h"}}}} {
		ws, resp := env.upgrade(t, nil, h.query, h.header)
		if ws == nil {
			t.Fatalf("%v %v: refused with %d", h.query, h.header, resp.StatusCode)
		}
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := wire.DecodeServer(data); m.(wire.Welcome).User != "ann" {
			t.Errorf("welcome %s, want user ann", data)
		}
	}
}

// A pulse.v1 client without a token may only say hello, with a token;
// then the token's patterns rule, and a refusal leaves it usable.
func TestHelloToken(t *testing.T) {
	env := startAuthHub(t, nil, nil)
	c := dial(t, env.addr())
	if c.welcome.User != "" {
		t.Errorf("welcome names user %q before any token", c.welcome.User)
	}
	c.send(t, wire.Subscribe{ID: 1, Channel: "room.1"})
	if e := expect[wire.Error](t, c); e.Code != wire.CodeUnauthorized || e.ID != 1 {
		t.Errorf("subscribe before the token: %+v, want unauthorized", e)
	}
	c.send(t, wire.Hello{ID: 2, Client: "ann's phone"})
	if e := expect[wire.Error](t, c); e.Code != wire.CodeUnauthorized {
		t.Errorf("hello without a token: %+v, want unauthorized", e)
	}
	c.send(t, wire.Hello{ID: 3, Token: "ann:1h"})
	if a := expect[wire.Ack](t, c); a.ID != 3 || a.User != "ann" {
		t.Errorf("hello with a token: %+v, want an ack naming ann", a)
	}
	c.send(t, wire.Subscribe{ID: 4, Channel: "secret"})
	if e := expect[wire.Error](t, c); e.Code != wire.CodeForbidden || e.ID != 4 {
		t.Errorf("subscribe outside the patterns: %+v, want forbidden", e)
	}
	c.send(t, wire.Publish{ID: 5, Channel: "news", Data: json.RawMessage(`1`)})
	if e := expect[wire.Error](t, c); e.Code != wire.CodeForbidden || e.ID != 5 {
		t.Errorf("publish outside the patterns: %+v, want forbidden", e)
	}
	c.subscribe(t, "room.1", nil, false)
	c.send(t, wire.Publish{ID: 6, Channel: "room.1", Data: json.RawMessage(`1`)})
	expect[wire.Message](t, c)
	if a := expect[wire.Ack](t, c); a.ID != 6 {
		t.Errorf("publish inside the patterns: %+v", a)
	}
}

// No token within the liveness Timeout: 4100.
func TestNoTokenInTime(t *testing.T) {
	env := startAuthHub(t, &pulse.Options{Interval: time.Second, Timeout: 200 * time.Millisecond}, nil)
	c := dial(t, env.addr())
	if code := c.closeCode(t); code != int(pulse.CloseUnauthorized) {
		t.Errorf("closed with %d, want %d", code, pulse.CloseUnauthorized)
	}
}

// A bad token in the first hello closes at once: 4100, or 4002 for an
// expired one, which the client may come back from with a new one.
func TestBadHelloTokenCloses(t *testing.T) {
	env := startAuthHub(t, nil, nil)
	for token, want := range map[string]pulse.CloseCode{"forged": pulse.CloseUnauthorized, "expired": pulse.CloseTokenExpired} {
		c := dial(t, env.addr())
		c.send(t, wire.Hello{ID: 1, Token: token})
		if code := c.closeCode(t); code != int(want) {
			t.Errorf("hello with token %q: closed with %d, want %d", token, code, want)
		}
	}
}

// A token whose expiry is zero has expired: 4002 at once.
func TestZeroExpiryCloses(t *testing.T) {
	env := startAuthHub(t, nil, nil)
	c := dial(t, env.addr())
	c.send(t, wire.Hello{ID: 1, Token: "ann:zero"})
	if code := c.closeCode(t); code != int(pulse.CloseTokenExpired) {
		t.Errorf("closed with %d, want %d", code, pulse.CloseTokenExpired)
	}
}

// A token's expiry closes with 4002, unless a refresh came first; a
// refresh of another user or a bad one is refused and changes nothing.
func TestExpiryAndRefresh(t *testing.T) {
	env := startAuthHub(t, nil, nil)
	refreshed := dial(t, env.addr())
	refreshed.send(t, wire.Hello{ID: 1, Token: "ann:1s"})
	expect[wire.Ack](t, refreshed)
	witness := dial(t, env.addr()) // its token expires after refreshed's first one
	witness.send(t, wire.Hello{ID: 1, Token: "ann:1s"})
	expect[wire.Ack](t, witness)

	refreshed.send(t, wire.Refresh{ID: 2, Token: "bob:1h"})
	if e := expect[wire.Error](t, refreshed); e.Code != wire.CodeForbidden {
		t.Errorf("refresh with another user's token: %+v, want forbidden", e)
	}
	refreshed.send(t, wire.Refresh{ID: 3, Token: "forged"})
	if e := expect[wire.Error](t, refreshed); e.Code != wire.CodeUnauthorized {
		t.Errorf("refresh with a bad token: %+v, want unauthorized", e)
	}
	refreshed.send(t, wire.Refresh{ID: 4, Token: "ann:1h"})
	if a := expect[wire.Ack](t, refreshed); a.ID != 4 {
		t.Errorf("refresh: %+v", a)
	}
	if code := witness.closeCode(t); code != int(pulse.CloseTokenExpired) {
		t.Errorf("witness closed with %d, want %d", code, pulse.CloseTokenExpired)
	}
	refreshed.send(t, wire.PresenceQuery{ID: 5, Channel: "room.1"})
	if p := expect[wire.Presence](t, refreshed); p.ID != 5 {
		t.Errorf("refreshed connection answered %+v", p)
	}
}

// Presence shows the user; Authorize sees the user and the claims.
func TestPresenceAndAuthorizeSeeUser(t *testing.T) {
	var (
		mu   sync.Mutex // the worker writes, the test reads: a socket between them is no synchronisation
		seen []Peer
	)
	authorize := func(p Peer, a Action, channel string) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
		return nil
	}
	env := startAuthHub(t, nil, &Options{Authorize: authorize})
	c := dial(t, env.addr())
	c.send(t, wire.Hello{ID: 1, Token: "ann:1h", Client: "phone"})
	expect[wire.Ack](t, c)
	c.subscribe(t, "room.1", nil, true)
	if j := expect[wire.Join](t, c); j.Member.User != "ann" || j.Member.Client != "phone" {
		t.Errorf("join %+v, want user ann", j)
	}
	c.send(t, wire.PresenceQuery{ID: 2, Channel: "room.1"})
	p := expect[wire.Presence](t, c)
	if !slices.ContainsFunc(p.Members, func(m wire.Member) bool { return m.User == "ann" }) {
		t.Errorf("presence %+v, want ann", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[0].User != "ann" || seen[0].Claims["team"] != "blue" {
		t.Errorf("Authorize saw %+v, want user ann and her claims", seen)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"room", "room", true},
		{"room", "rooms", false},
		{"*", "", true},
		{"*", "anything/at.all", true},
		{"room.*", "room.", true},
		{"room.*", "room.1", true},
		{"room.*", "room", false},
		{"room.*", "xroom.1", false},
		{"*.news", "eu.news", true},
		{"*.news", "eu.news.old", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"a**", "a", true},
		{"user.*.inbox", "user.ann.inbox", true},
		{"user.*.inbox", "user.ann.outbox", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// FuzzMatch: "*" matches everything, and a pattern without stars only
// itself.
func FuzzMatch(f *testing.F) {
	f.Add("room.*", "room.1")
	f.Add("a*b*c", "abc")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !Match("*", name) || !Match(name, name) && !strings.Contains(name, "*") {
			t.Errorf("Match broke on %q", name)
		}
		if !strings.Contains(pattern, "*") && Match(pattern, name) != (pattern == name) {
			t.Errorf("Match(%q, %q) without a star", pattern, name)
		}
	})
}
