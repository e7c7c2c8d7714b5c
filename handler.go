package pulse

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// A Handler serves the connections of one endpoint, as an http.Handler
// serves requests: Server.Handler mounts it in any mux.
//
// Accept is called with each upgrade request, before the upgrade, on the
// request's goroutine. It returns the Session that will own the
// connection, or an error that refuses the request with an HTTP answer:
// an *HTTPError's status and reason, or 403 Forbidden with the error's
// text. If the upgrade then fails, the Session is dropped without a call.
type Handler interface {
	Accept(r *http.Request) (Session, error)
}

// HandlerFunc adapts a function to a Handler, as http.HandlerFunc does.
type HandlerFunc func(r *http.Request) (Session, error)

// Accept calls f(r).
func (f HandlerFunc) Accept(r *http.Request) (Session, error) { return f(r) }

// Funcs is a Handler for endpoints whose connections need no state of
// their own, such as an echo: each connection's session calls the non-nil
// fields with the connection.
type Funcs struct {
	Open    func(c *Conn)
	Receive func(c *Conn, m Message)
	Closed  func(c *Conn, err *CloseError)
}

// Accept returns a session that calls f's fields.
func (f Funcs) Accept(*http.Request) (Session, error) { return &funcSession{f: f}, nil }

// funcSession is one connection of a Funcs handler.
type funcSession struct {
	f Funcs
	c *Conn
}

func (s *funcSession) Open(c *Conn) {
	s.c = c
	if s.f.Open != nil {
		s.f.Open(c)
	}
}

func (s *funcSession) Receive(m Message) {
	if s.f.Receive != nil {
		s.f.Receive(s.c, m)
	}
}

func (s *funcSession) Closed(err *CloseError) {
	if s.f.Closed != nil {
		s.f.Closed(s.c, err)
	}
}

// SubprotocolHandler is a Handler that speaks a WebSocket subprotocol.
// Server.Handler offers it to clients; a Handler that does not implement
// it negotiates none, so a client asking for pulse.v1 learns at once that
// the endpoint does not speak it. A client that negotiates Subprotocol
// (pulse.v1) gets the app heartbeat.
type SubprotocolHandler interface {
	Handler
	Subprotocol() string
}

// A Session is the state of one connection, made by its Handler: what
// net/http keeps on a handler's stack, pulse keeps here, so no map of
// connections is needed. Its methods are called one at a time: Open once
// the connection is up, before its first heartbeat and before any message
// (a message Open sends is the first the peer receives, in the same write
// as the 101 response, which otherwise leaves as Open returns: a slow
// Open delays the peer's handshake); Receive for each
// data message, from the connection's reader, which waits while Receive
// runs; Closed once, last, with why the connection ended. They should
// return quickly: a slow Receive delays the reading of heartbeat answers.
type Session interface {
	Open(c *Conn)
	Receive(m Message)
	Closed(err *CloseError)
}

// HTTPError refuses an upgrade request with an HTTP status, when a
// Handler's Accept returns it. The answer's body is the JSON object
// {"error": Reason}.
type HTTPError struct {
	Status int // such as http.StatusUnauthorized
	Reason string
	// RetryAfter, if positive, is sent as a Retry-After header, in whole
	// seconds rounded up: when the client may try again.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return "pulse: refused with " + http.StatusText(e.Status) + ": " + e.Reason
}

// refusal is the HTTP answer to a request that Accept refused with err.
func refusal(err error) *HTTPError {
	var he *HTTPError
	if errors.As(err, &he) {
		return he
	}
	return &HTTPError{Status: http.StatusForbidden, Reason: err.Error()}
}

func (e *HTTPError) write(w http.ResponseWriter) {
	body, _ := json.Marshal(map[string]string{"error": e.Reason})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(e.Status)
	w.Write(append(body, '\n'))
}
