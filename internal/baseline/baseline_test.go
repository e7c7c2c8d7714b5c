package baseline

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// changes receives a value whenever a started Server's counts may have
// changed; await waits on it.
var changes = make(chan struct{}, 1)

// notifyChange is the servers' change hook: it wakes await.
func notifyChange() {
	select {
	case changes <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// start serves a Server on httptest until the test ends.
func start(t *testing.T, interval, timeout time.Duration) (*Server, string) {
	t.Helper()
	s := New(interval, timeout)
	s.changed = notifyChange
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http")
}

// dial connects a client; its reader, if read is set, answers pings as
// gorilla's default handler does and passes messages on.
func dial(t *testing.T, url string, read bool) <-chan []byte {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	msgs := make(chan []byte, 16)
	done := make(chan struct{})
	t.Cleanup(func() {
		ws.Close()
		<-done
	})
	if !read {
		close(done)
		return msgs
	}
	go func() {
		defer close(done)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			msgs <- msg
		}
	}()
	ws.WriteMessage(websocket.TextMessage, []byte("hello"))
	return msgs
}

// await waits up to 5s for cond, checking it at every change the server
// reports.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-changes:
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func TestEchoAndPongsCounted(t *testing.T) {
	s, url := start(t, 10*time.Millisecond, time.Second)
	msgs := dial(t, url, true)
	select {
	case msg := <-msgs:
		if string(msg) != "hello" {
			t.Fatalf("echo %q, want hello", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo")
	}
	await(t, "3 pongs", func() bool { return s.Pongs() >= 3 })
	if n := s.Len(); n != 1 {
		t.Fatalf("Len() = %d, want 1", n)
	}
}

func TestSilentClientDropped(t *testing.T) {
	s, url := start(t, 10*time.Millisecond, 200*time.Millisecond)
	dial(t, url, false)
	await(t, "the client registered", func() bool { return s.Len() == 1 })
	await(t, "the silent client dropped", func() bool { return s.Len() == 0 })
	if n := s.Pongs(); n != 0 {
		t.Fatalf("%d pongs from a client that never reads", n)
	}
}
