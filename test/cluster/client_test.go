package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse/client"
)

// presenceEvent is one join or leave a client saw.
type presenceEvent struct {
	channel string
	member  string
	joined  bool
	at      time.Time
}

// recorder keeps what a client's callbacks receive.
type recorder struct {
	mu         sync.Mutex
	msgs       []client.Message
	presence   []presenceEvent
	subscribed []client.Subscribed
	changed    chan struct{} // holds a token when something was received since the last wait
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) note(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// options returns client options that record into r.
func (r *recorder) options(name string) *client.Options {
	return &client.Options{
		Name:         name,
		Backoff:      func(int) time.Duration { return 50 * time.Millisecond },
		OnMessage:    func(m client.Message) { r.note(func() { r.msgs = append(r.msgs, m) }) },
		OnSubscribed: func(s client.Subscribed) { r.note(func() { r.subscribed = append(r.subscribed, s) }) },
		OnPresence: func(channel string, m client.Member, joined bool) {
			r.note(func() { r.presence = append(r.presence, presenceEvent{channel, m.ID, joined, time.Now()}) })
		},
	}
}

// waitFor waits until ok holds of r, within wait.
func (r *recorder) waitFor(t *testing.T, what string, ok func(r *recorder) bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		done := ok(r)
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waited %v for %s; have %d messages, presence %v, subscribed %+v", wait, what, len(r.msgs), r.presence, r.subscribed)
		}
	}
}

// within reports whether ok holds of r within d.
func (r *recorder) within(d time.Duration, ok func(r *recorder) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		done := ok(r)
		r.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			return false
		}
	}
}

func (r *recorder) messages() []client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Message(nil), r.msgs...)
}

// runClient runs a client of url with opts until stop is called or the
// test ends; stop joins its Run.
func runClient(t *testing.T, url string, opts *client.Options) (c *client.Client, stop func()) {
	t.Helper()
	c = client.New(url, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	return c, stop
}

func subscribe(t *testing.T, c *client.Client, channel string, opts *client.SubscribeOptions) client.Subscribed {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	s, err := c.Subscribe(ctx, channel, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	return s
}

func publish(t *testing.T, c *client.Client, channel string, i int, key string) client.PublishResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	res, err := c.Publish(ctx, channel, fmt.Appendf(nil, `{"i":%d}`, i), &client.PublishOptions{Key: key})
	if err != nil {
		t.Fatalf("Publish(%q, %d): %v", channel, i, err)
	}
	return res
}

// checkSequence reports unless msgs are {"i":0} .. {"i":n-1}, in order,
// at consecutive offsets of one epoch.
func checkSequence(t *testing.T, msgs []client.Message, n int) {
	t.Helper()
	if len(msgs) != n {
		t.Errorf("received %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs[:min(len(msgs), n)] {
		if want := fmt.Sprintf(`{"i":%d}`, i); string(m.Data) != want {
			t.Fatalf("message %d is %s at %v, want %s", i, m.Data, m.Pos, want)
		}
		if i > 0 && (m.Pos.Epoch != msgs[0].Pos.Epoch || m.Pos.Offset != msgs[i-1].Pos.Offset+1) {
			t.Fatalf("message %d at %v after %v: want the next offset of one epoch", i, m.Pos, msgs[i-1].Pos)
		}
	}
}
