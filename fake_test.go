package pulse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeTransport is an in-memory transport for tests in virtual time. The
// test plays the peer: answer is called with every frame the writer sends.
type fakeTransport struct {
	answer func(c *Conn, op opcode, data []byte)

	mu     sync.Mutex
	conn   *Conn
	frames []sentFrame
	writes []int         // the number of frames of each write
	ended  chan struct{} // closed when reads must fail
	once   sync.Once
}

type sentFrame struct {
	op   opcode
	data string
	at   time.Time
}

func newFakeTransport(answer func(*Conn, opcode, []byte)) *fakeTransport {
	return &fakeTransport{answer: answer, ended: make(chan struct{})}
}

func (t *fakeTransport) writeFrames(fs []frame, _ time.Time) error {
	t.mu.Lock()
	t.writes = append(t.writes, len(fs))
	t.mu.Unlock()
	for _, f := range fs {
		t.mu.Lock()
		t.frames = append(t.frames, sentFrame{op: f.op, data: string(f.data), at: time.Now()})
		c := t.conn
		t.mu.Unlock()
		if t.answer != nil && c != nil {
			t.answer(c, f.op, f.data)
		}
	}
	return nil
}

func (t *fakeTransport) endReads(d time.Duration) { time.AfterFunc(d, t.end) }
func (t *fakeTransport) close() error             { t.end(); return nil }
func (t *fakeTransport) abort() error             { return t.close() }
func (t *fakeTransport) remoteAddr() string       { return "fake" }
func (t *fakeTransport) end()                     { t.once.Do(func() { close(t.ended) }) }

// batches returns the frames sent, write by write.
func (t *fakeTransport) batches() [][]sentFrame {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b [][]sentFrame
	at := 0
	for _, n := range t.writes {
		b = append(b, t.frames[at:at+n])
		at += n
	}
	return b
}

func (f sentFrame) String() string { return fmt.Sprintf("%d:%s", f.op, f.data) }

func (t *fakeTransport) sent() []sentFrame {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]sentFrame(nil), t.frames...)
}

// fakeConn opens a connection on t and plays its reader: when reads must
// fail, it calls readEnded. closed receives the close error.
func fakeConn(tb testing.TB, s *Server, t *fakeTransport, kind HeartbeatKind) (c *Conn, closed <-chan *CloseError) {
	tb.Helper()
	done := make(chan *CloseError, 1)
	c, err := s.open(t, handshake{kind: kind}, &funcSession{f: Funcs{Closed: func(_ *Conn, err *CloseError) { done <- err }}})
	if err != nil {
		tb.Fatal(err)
	}
	t.mu.Lock()
	t.conn = c
	t.mu.Unlock()
	go func() {
		<-t.ended
		c.readEnded(errors.New("fake: read failed"))
	}()
	return c, done
}

// runServer runs s until the test ends, and waits for Run to return. It
// need not wait for Run to start: the wheel's clock starts in NewServer and
// Run fires every tick it missed, so tests wait on the heartbeats themselves.
func runServer(tb testing.TB, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
}

// newTestServer makes a server that logs nothing.
func newTestServer(tb testing.TB, o *Options) *Server {
	tb.Helper()
	if o == nil {
		o = &Options{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := NewServer(o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
