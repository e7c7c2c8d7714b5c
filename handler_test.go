package pulse

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// speaker is a Funcs handler that speaks pulse.v1.
type speaker struct{ Funcs }

func (speaker) Subprotocol() string { return Subprotocol }

// A handler refuses an upgrade request before the upgrade, with the
// status it chose, or 403 for a plain error; the body says why in JSON.
func TestAcceptRefuses(t *testing.T) { onEngines(t, testAcceptRefuses) }

func testAcceptRefuses(t *testing.T, engine Engine) {
	srv := newTestServer(t, &Options{Engine: engine})
	runServer(t, srv)
	refuse := func(err error) http.Handler {
		return srv.Handler(HandlerFunc(func(*http.Request) (Session, error) { return nil, err }))
	}
	for _, tc := range []struct {
		err        error
		status     int
		reason     string
		retryAfter string
	}{
		{&HTTPError{Status: http.StatusUnauthorized, Reason: "token expired"}, 401, "token expired", ""},
		{errors.New("no entry"), 403, "no entry", ""},
		{&HTTPError{Status: http.StatusServiceUnavailable, Reason: "busy", RetryAfter: 1500 * time.Millisecond}, 503, "busy", "2"},
	} {
		hs := httptest.NewServer(refuse(tc.err))
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		hs.Close()
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Fatalf("%v: dial gave %v, %v; want HTTP %d", tc.err, resp, err, tc.status)
		}
		var body struct{ Error string }
		if json.NewDecoder(resp.Body).Decode(&body); body.Error != tc.reason {
			t.Errorf("%v: body %+v, want the reason %q", tc.err, body, tc.reason)
		}
		if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, got, tc.retryAfter)
		}
		resp.Body.Close()
	}
}

// pulse.v1 is negotiated only with a handler that speaks it: a client
// asking an echo endpoint for it gets no subprotocol and frame heartbeats.
func TestSubprotocolOnlyWhenSpoken(t *testing.T) { onEngines(t, testSubprotocolOnlyWhenSpoken) }

func testSubprotocolOnlyWhenSpoken(t *testing.T, engine Engine) {
	srv := newTestServer(t, &Options{Engine: engine})
	runServer(t, srv)
	d := websocket.Dialer{Subprotocols: []string{Subprotocol}}
	for _, tc := range []struct {
		h           Handler
		subprotocol string
		kind        string
	}{
		{Funcs{}, "", "kind=frame"},
		{speaker{}, Subprotocol, "kind=app"},
	} {
		hs := httptest.NewServer(srv.Handler(tc.h))
		ws, resp, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ws.Subprotocol() != tc.subprotocol || !strings.HasPrefix(resp.Header.Get("Pulse-Heartbeat"), tc.kind) {
			t.Errorf("%T: subprotocol %q, %s; want %q, %s", tc.h, ws.Subprotocol(), resp.Header.Get("Pulse-Heartbeat"), tc.subprotocol, tc.kind)
		}
		ws.Close()
		hs.Close()
	}
}

// What a session sends in Open is the first frame on the wire, even when
// the connection's first heartbeat falls on the very first tick.
func TestOpenSendsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newTestServer(t, &Options{Interval: time.Second, Timeout: time.Second})
		runServer(t, srv)
		for range 50 { // the first heartbeat's tick is random: try it often
			ft := newFakeTransport(nil)
			c, err := srv.open(ft, handshake{kind: HeartbeatApp}, &funcSession{f: Funcs{Open: func(c *Conn) {
				time.Sleep(2 * srv.Tick()) // a slow Open: heartbeats are due meanwhile
				c.Send(Message{Type: MessageText, Data: []byte("first")})
			}}})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if sent := ft.sent(); len(sent) == 0 || sent[0].data != "first" {
				t.Fatalf("frames %+v: Open's message did not come first", sent)
			}
			c.Close(CloseNormal, "")
			ft.end()
			c.readEnded(errors.New("done"))
		}
	})
}

// A session may close its connection in Open, before the server has
// handed it to its engine's reader: every client sees the close, and the
// server counts every connection closed (on epoll, the loop must know the
// Conn before Open runs).
func TestOpenCloses(t *testing.T) { onEngines(t, testOpenCloses) }

func testOpenCloses(t *testing.T, e Engine) {
	srv := newTestServer(t, &Options{Engine: e})
	closed := make(chan *CloseError, 100)
	h := Funcs{
		Open:   func(c *Conn) { c.Close(4100, "not you") },
		Closed: func(_ *Conn, err *CloseError) { closed <- err },
	}
	hs := httptest.NewServer(srv.Handler(h))
	defer hs.Close()
	runServer(t, srv)
	for range 50 {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4100 {
			t.Fatalf("client saw %v, want the close 4100", err)
		}
		ws.Close()
		if err := <-closed; err.Code != 4100 {
			t.Fatalf("Closed got %v, want 4100", err)
		}
	}
}

// A heartbeat that falls due while the session's first message still
// waits for the writer goes after it: the welcome is the first frame.
func TestFirstMessageBeforeHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newTestServer(t, &Options{Interval: time.Second, Timeout: time.Second})
		ft := newFakeTransport(nil)
		c, err := srv.open(ft, handshake{kind: HeartbeatApp}, &funcSession{f: Funcs{}})
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock() // as if the writer had not run yet when the wheel's turn came
		c.out.push(Message{Type: MessageText, Data: []byte("welcome")})
		c.out.ping = true
		c.mu.Unlock()
		fs := c.nextBatch(make([]frame, 0, maxBatchFrames))
		if len(fs) != 2 || string(fs[0].data) != "welcome" || string(fs[1].data) != string(appPing) {
			t.Fatalf("first batch %+v, want the welcome, then the heartbeat", fs)
		}
		c.Close(CloseNormal, "")
		ft.end()
		c.readEnded(errors.New("done"))
	})
}
