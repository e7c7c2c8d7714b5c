package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// A raw storm client whose connection the server ends gives its socket
// back: thousands of reconnects must not leak a file each.
func TestHoldRawClosesSocket(t *testing.T) {
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := up.Upgrade(w, r, nil); err == nil {
			ws.Close() // no close frame: the client's read fails
		}
	}))
	defer hs.Close()
	s := stormOf([]string{"room"}, 1, 1)
	s.raw = true
	sc := s.newClient("ws"+strings.TrimPrefix(hs.URL, "http"), 0, 1)
	s.slots = make(chan struct{}, 1)
	s.slots <- struct{}{}
	c, err := (&benchDialer{url: s.url, raw: true}).dial(t.Context(), wait)
	if err != nil {
		t.Fatal(err)
	}
	s.holdRaw(context.Background(), sc, c)
	if _, err := c.ws.NetConn().Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after the connection ended, a write on its socket gave %v, want net.ErrClosed", err)
	}
	if sc.open || s.openNow.Load() != 0 {
		t.Errorf("the client is still counted open")
	}
}
