package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// tokenSource hands out numbered tokens that expire life after they are
// made; the client reads only their exp.
type tokenSource struct {
	life   time.Duration
	mu     sync.Mutex // guards issued and fail
	issued int
	fail   bool
}

func (s *tokenSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func (s *tokenSource) token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		s.fail = false
		return "", errors.New("identity provider down")
	}
	s.issued++
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": fmt.Sprint("token-", s.issued), "exp": time.Now().Add(s.life).Unix(),
	}).SignedString([]byte("not checked by the client"))
}

func subject(t *testing.T, token string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	sub, _ := claims.GetSubject()
	return sub
}

// The token goes in the hello; a newer one goes in a refresh when a fifth
// of its life is left; after a 4002 the next connection gets a new one.
func TestTokenHelloRefreshAndExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const life = 100 * time.Second
		src := &tokenSource{life: life}
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Token: src.token, Backoff: func(int) time.Duration { return time.Second }})
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		start := time.Now()
		if h := recv[wire.Hello](t, conn); subject(t, h.Token) != "token-1" {
			t.Fatalf("hello carries %q, want the first token", h.Token)
		}
		r := recv[wire.Refresh](t, conn)
		if subject(t, r.Token) != "token-2" || r.ID == 0 {
			t.Fatalf("refresh %+v, want the second token with an id", r)
		}
		if got, want := time.Since(start), life*4/5; got != want {
			t.Errorf("refreshed after %v, want %v (a fifth of the life left)", got, want)
		}
		conn.sendJSON(map[string]any{"type": "ack", "id": r.ID})

		conn.closeWith(pulse.CloseTokenExpired, "token expired")
		lost := s.await(t, StateReconnecting)
		var ce *pulse.CloseError
		if !errors.As(lost.Err, &ce) || ce.Code != pulse.CloseTokenExpired {
			t.Fatalf("lost with %v, want 4002", lost.Err)
		}
		conn = f.accept(t, time.Hour, time.Hour)
		if h := recv[wire.Hello](t, conn); subject(t, h.Token) != "token-3" {
			t.Fatalf("hello after 4002 carries %q, want a new token", h.Token)
		}
	})
}

// A token that cannot be fetched fails the dial like a refused one: the
// client backs off and tries again, and never dials without it.
func TestTokenFetchFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &tokenSource{life: time.Hour, fail: true}
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Token: src.token, Backoff: func(int) time.Duration { return time.Second }})
		running(t, c)
		lost := s.await(t, StateReconnecting)
		if lost.Err == nil || src.count() != 0 {
			t.Fatalf("first attempt: %v, %d tokens; want the provider's error and no dial", lost.Err, src.count())
		}
		conn := f.accept(t, time.Hour, time.Hour)
		if h := recv[wire.Hello](t, conn); subject(t, h.Token) != "token-1" {
			t.Fatalf("hello carries %q", h.Token)
		}
	})
}

// A 4100 (unauthorized) is terminal: Run returns it.
func TestUnauthorizedIsTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Token: (&tokenSource{life: time.Hour}).token})
		r := running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		recv[wire.Hello](t, conn)
		conn.closeWith(pulse.CloseUnauthorized, "unauthorized: bad signature")
		<-r.done
		var ce *pulse.CloseError
		if !errors.As(r.err, &ce) || ce.Code != pulse.CloseUnauthorized {
			t.Fatalf("Run = %v, want the 4100", r.err)
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	exp := time.Unix(1_800_000_000, 0)
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix()}).SignedString([]byte("k"))
	if got, ok := tokenExpiry(good); !ok || !got.Equal(exp) {
		t.Errorf("tokenExpiry = %v, %v; want %v", got, ok, exp)
	}
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a"}).SignedString([]byte("k"))
	for _, token := range []string{"", "junk", "a.b.c", "a.!!.c", noExp} {
		if _, ok := tokenExpiry(token); ok {
			t.Errorf("tokenExpiry(%q) found an exp", token)
		}
	}
}
