package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/client"
	"github.com/pulse-go/pulse/hub"
)

// How "pulse connect" ends: what it waits for at /quit and at the end of
// its input, and what it says.

// /quit waits for the publish typed before it to be acknowledged.
func TestConnectQuitWaitsForAck(t *testing.T) {
	s := startHubServer(t)
	in := "/pub news {\"text\":\"hi\"}\n/quit\n"
	c := startCommandReading(t, strings.NewReader(in), nil, "connect", s.url)
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(c.err.String(), "ack news") {
		t.Errorf("no ack printed:\n%s", c.err)
	}
	if got := historyOf(t, s.broker, "news"); got != `{"text":"hi"}` {
		t.Errorf("published %q", got)
	}
}

// A subscribed client's own publication, which the server sends before
// the ack, is printed before the command exits. The server here keeps
// that order by construction (its pulse.v1 side is the least the
// console needs), so the test covers the console, not the hub's timing.
func TestConnectQuitPrintsOwnPublication(t *testing.T) {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := startPulseHTTP(t, srv, srv.Handler(orderedPulse()))
	in := "/sub room:lobby\n/pub room:lobby {\"text\":\"hi\"}\n/quit\n"
	c := startCommandReading(t, strings.NewReader(in), nil, "connect", url)
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := c.out.String(); got != `room:lobby {"text":"hi"}` {
		t.Errorf("stdout %q, want the client's own publication", got)
	}
}

// orderedPulse is a one-client pulse.v1 server: it welcomes, confirms
// subscribes, and answers a publish with the message (if subscribed) and
// then the ack.
func orderedPulse() pulse.Handler {
	send := func(c *pulse.Conn, format string, args ...any) {
		c.Send(pulse.Message{Type: pulse.MessageText, Data: fmt.Appendf(nil, format, args...)})
	}
	var subscribed sync.Map // channel -> true
	return speaksPulse{pulse.Funcs{
		Open: func(c *pulse.Conn) {
			send(c, `{"type":"welcome","session":"s","member_id":"m","interval_ms":25000,"timeout_ms":10000}`)
		},
		Receive: func(c *pulse.Conn, m pulse.Message) {
			var req struct {
				Type, Channel string
				ID            uint64
				Data          json.RawMessage
			}
			json.Unmarshal(m.Data, &req)
			switch req.Type {
			case "subscribe":
				subscribed.Store(req.Channel, true)
				send(c, `{"type":"subscribed","id":%d,"channel":%q,"position":{"epoch":"e","offset":0}}`, req.ID, req.Channel)
			case "publish":
				if _, ok := subscribed.Load(req.Channel); ok {
					send(c, `{"type":"message","channel":%q,"pos":{"epoch":"e","offset":1},"data":%s}`, req.Channel, req.Data)
				}
				send(c, `{"type":"ack","id":%d,"pos":{"epoch":"e","offset":1}}`, req.ID)
			}
		},
	}}
}

// speaksPulse is a Funcs handler that negotiates pulse.v1, as a pulse.v1
// server of its own would.
type speaksPulse struct{ pulse.Funcs }

func (speaksPulse) Subprotocol() string { return pulse.Subprotocol }

// historyOf returns the data published to channel, space separated.
func historyOf(t *testing.T, b *hub.Memory, channel string) string {
	t.Helper()
	_, top, _ := b.History(context.Background(), channel, hub.Position{})
	pubs, _, err := b.History(context.Background(), channel, hub.Position{Epoch: top.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pubs {
		got = append(got, string(p.Data))
	}
	return strings.Join(got, " ")
}

// A server that welcomes but never acknowledges: the end of the input
// waits --wait, then exits with an error counting the publish.
func TestConnectEOFUnacknowledged(t *testing.T) {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	welcome := pulse.Message{Type: pulse.MessageText, Data: []byte(`{"type":"welcome","session":"s","member_id":"m","interval_ms":25000,"timeout_ms":10000}`)}
	url := startPulseHTTP(t, srv, srv.Handler(speaksPulse{pulse.Funcs{Open: func(c *pulse.Conn) { c.Send(welcome) }}}))
	c := startCommandReading(t, strings.NewReader("/pub news hi\n"), nil, "connect", "--wait", "300ms", url)
	err = c.exit(t)
	if err == nil || !strings.Contains(err.Error(), "1 publish not acknowledged within 300ms") {
		t.Fatalf("run: %v, want one unacknowledged publish", err)
	}
}

// Commands take effect in the order typed: /sub then /unsub at once
// leaves the channel unsubscribed.
func TestConnectSubUnsubInOrder(t *testing.T) {
	s := startHubServer(t)
	c := startCommand(t, "connect", s.url)
	c.send(t, "/sub gone")
	c.send(t, "/unsub gone")
	c.send(t, "/sub kept")
	c.err.await(t, 0, "subscribed kept")
	s.publish(t, "gone", `"not for us"`)
	s.publish(t, "kept", `"for us"`)
	c.out.await(t, 0, `kept "for us"`) // the server delivers in order
	if out := c.out.String(); strings.Contains(out, "gone") {
		t.Fatalf("still subscribed to gone after /unsub:\n%s", out)
	}
}

// /to confirms, an unknown command says so and lists the commands.
func TestConnectCommandWording(t *testing.T) {
	s := startHubServer(t)
	c := startCommand(t, "connect", s.url)
	c.send(t, "/to room")
	c.err.await(t, 0, "plain lines now go to room")
	c.send(t, "/bogus")
	c.err.await(t, 0, "unknown command /bogus", "/sub CHANNEL")
}

// At the end of the input, raw mode waits for the echoes before it
// closes, and does not call its own close the server's.
func TestConnectRawEOFWaitsForAnswers(t *testing.T) {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := startPulseHTTP(t, srv, srv.Handler(echo))
	c := startCommandReading(t, strings.NewReader("a\nb\nc\n"), nil, "connect", "--raw", url)
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := c.out.String(); got != "a\nb\nc" {
		t.Errorf("stdout %q, want the three echoes", got)
	}
	if errs := c.err.String(); strings.Contains(errs, "by the server") || !strings.Contains(errs, "closed") {
		t.Errorf("stderr does not say the client closed:\n%s", errs)
	}
}

// A server that accepts pulse.v1 but sends no welcome: connect says so
// and goes on in plain WebSocket mode.
func TestConnectNoWelcomeFallsBackToRaw(t *testing.T) {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := startPulseHTTP(t, srv, srv.Handler(speaksPulse{echo}))
	c := startCommand(t, "connect", "--handshake-timeout", "300ms", url)
	c.err.await(t, 0, "accepted pulse.v1 but sent no welcome within 300ms", "plain WebSocket mode", "--raw")
	c.send(t, "hi")
	c.out.await(t, 0, "hi")
	c.in.Close()
	if err := c.exit(t); err != nil {
		t.Fatalf("run after EOF: %v", err)
	}
	if strings.Contains(c.err.String(), "lost") {
		t.Errorf("a connection never welcomed was reported lost:\n%s", c.err)
	}
}

// A server that accepts pulse.v1 and talks, but not pulse.v1: its first
// message gives it away at once.
func TestConnectFirstMessageNotWelcome(t *testing.T) {
	upgrader := websocket.Upgrader{Subprotocols: []string{pulse.Subprotocol}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte("hello, stranger"))
		for {
			kind, data, err := ws.ReadMessage()
			if err != nil || ws.WriteMessage(kind, data) != nil {
				return
			}
		}
	}))
	defer ts.Close()
	c := startCommand(t, "connect", "ws"+strings.TrimPrefix(ts.URL, "http"))
	c.err.await(t, 0, `its first message was "hello, stranger", not a welcome`, "plain WebSocket mode")
	c.in.Close()
	if err := c.exit(t); err != nil {
		t.Fatalf("run after EOF: %v", err)
	}
}

// A dial that never succeeded is not a lost connection.
func TestConnectDialFailureIsNotLost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := startCommand(t, "connect", "ws://"+addr+"/ws")
	c.err.await(t, 0, "cannot connect:", "retrying in")
	if strings.Contains(c.err.String(), "lost") {
		t.Fatalf("a failed dial was reported as lost:\n%s", c.err)
	}
}

func TestConnectURLErrors(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"localhost:8080/ws", `"localhost:8080/ws" is not a WebSocket URL: it must start with ws:// or wss://`},
		{"http://localhost:8080/ws", "is an HTTP URL; a WebSocket URL starts with ws:// or wss://, such as ws://localhost:8080/ws"},
		{"ws:///ws", "has no host"},
	} {
		err := run(t.Context(), []string{"connect", tc.arg}, &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("connect %s: %v, want %q", tc.arg, err, tc.want)
		}
	}
}

// The zero State, before Run, has a name.
func TestStateIdleNamed(t *testing.T) {
	if got := client.State(0).String(); got != "idle" {
		t.Fatalf("State(0) = %q, want idle", got)
	}
}

// pulse serve's /echo does not negotiate pulse.v1: connect switches to
// plain WebSocket mode at once, and the lines piped meanwhile are sent.
func TestConnectPipedToNonPulseEcho(t *testing.T) {
	s := startServe(t)
	start := time.Now()
	c := startCommandReading(t, strings.NewReader("a\nb\nc\n"), nil, "connect", "--handshake-timeout", "5s", s.url("ws", "/echo"))
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := c.out.String(); got != "a\nb\nc" {
		t.Errorf("stdout %q, want the three echoes", got)
	}
	if errs := c.err.String(); !strings.Contains(errs, "the server does not speak pulse.v1: plain WebSocket mode") || time.Since(start) > 4*time.Second {
		t.Errorf("stderr after %v does not say at once that the server does not speak pulse.v1:\n%s", time.Since(start), errs)
	}
}

// Piped lines and no server: the command gives up within its bounds and
// says the lines were not sent.
func TestConnectPipedNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := startCommandReading(t, strings.NewReader("/pub x 1\n/pub x 2\n"), nil, "connect", "--handshake-timeout", "100ms", "--wait", "100ms", "ws://"+addr+"/ws")
	err = c.exit(t)
	if err == nil || !strings.Contains(err.Error(), "no connection within 200ms (--handshake-timeout + --wait): 2 lines not sent") {
		t.Fatalf("run: %v", err)
	}
}

// /dev/null is a character device but no terminal: a command reading it
// is piped, not interactive.
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("/dev/null taken for a terminal")
	}
}
