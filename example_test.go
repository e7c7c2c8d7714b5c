package pulse_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/pulse-go/pulse"
)

// echo is the Session of one connection: it sends every message back,
// and reports how the connection ended.
type echo struct {
	conn   *pulse.Conn
	closed chan<- *pulse.CloseError
}

func (e *echo) Open(c *pulse.Conn)           { e.conn = c }
func (e *echo) Receive(m pulse.Message)      { e.conn.Send(m) }
func (e *echo) Closed(err *pulse.CloseError) { e.closed <- err }

// A Server mounted in an ordinary mux: an echo endpoint, a client that
// sends one message and closes, and the close as both sides see it.
func Example() {
	srv, err := pulse.NewServer(nil) // the default liveness rule: 25s + 10s
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }() // heartbeats, and the drain once ctx ends

	serverSaw := make(chan *pulse.CloseError, 1)
	mux := http.NewServeMux()
	mux.Handle("/echo", srv.Handler(pulse.HandlerFunc(func(r *http.Request) (pulse.Session, error) {
		return &echo{closed: serverSaw}, nil // each connection's own state
	})))
	hs := httptest.NewServer(mux)

	// Any WebSocket client connects; this one gets RFC 6455 ping frames,
	// which gorilla answers by itself.
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Pulse-Heartbeat:", resp.Header.Get("Pulse-Heartbeat"))
	ws.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, data, err := ws.ReadMessage()
	fmt.Printf("echo: %s %v\n", data, err)

	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	_, _, err = ws.ReadMessage() // the server answers the close
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println("client saw:", ce.Code, ce.Text)
	}
	ws.Close()
	fmt.Println("server saw:", <-serverSaw)

	hs.Close()
	stop()
	fmt.Println("Run:", <-ran)
	// Output:
	// Pulse-Heartbeat: kind=frame; interval_ms=25000; timeout_ms=10000
	// echo: hello <nil>
	// client saw: 1000 bye
	// server saw: pulse: closed 1000 (normal): bye
	// Run: <nil>
}
