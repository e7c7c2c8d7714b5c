package limit

import (
	"context"
	"net/http"
	"sync"

	"github.com/pulse-go/pulse"
)

// handler is a pulse.Handler behind a Limiter.
type handler struct {
	l *Limiter
	h pulse.Handler
}

// subprotocolHandler keeps the subprotocol of the handler it limits.
type subprotocolHandler struct {
	*handler
	subprotocol string
}

func (s subprotocolHandler) Subprotocol() string { return s.subprotocol }

// Accept takes a place for the connection, then asks the handler. The
// place is held from here: a pulse.Handler's session hears nothing when
// the upgrade fails after Accept, so the place is also given back when
// the upgrade request ends without the session having opened.
func (h *handler) Accept(r *http.Request) (pulse.Session, error) {
	addr := sourceAddr(r)
	if err := h.l.admit(addr); err != nil {
		return nil, err
	}
	s, err := h.h.Accept(r)
	if err != nil {
		h.l.release(addr)
		return nil, err
	}
	ls := &session{Session: s, l: h.l, addr: addr}
	context.AfterFunc(r.Context(), ls.abandon)
	return ls, nil
}

// session holds a place for its connection until Closed.
type session struct {
	pulse.Session
	// Set by Accept, never changes.
	l    *Limiter
	addr string

	mu    sync.Mutex // guards state
	state placeState
}

// placeState is where a session's place stands.
type placeState int

const (
	placeHeld      placeState = iota // taken by Accept, the session not opened yet
	placeOpen                        // the session opened: given back by Closed
	placeAbandoned                   // the request ended before Open: given back
	placeReleased                    // Closed gave it back
)

func (s *session) Open(c *pulse.Conn) {
	s.mu.Lock()
	if s.state == placeAbandoned {
		s.l.take(s.addr) // an engine that opens after the request ended
	}
	s.state = placeOpen
	s.mu.Unlock()
	s.Session.Open(c)
}

func (s *session) Closed(err *pulse.CloseError) {
	s.mu.Lock()
	if s.state == placeOpen {
		s.l.release(s.addr)
	}
	s.state = placeReleased
	s.mu.Unlock()
	s.Session.Closed(err)
}

// abandon gives back the place of an upgrade that never opened.
func (s *session) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == placeHeld {
		s.state = placeAbandoned
		s.l.release(s.addr)
	}
}
