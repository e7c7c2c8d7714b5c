package main

import (
	"sync"

	"github.com/pulse-go/pulse"
)

// broadcast is the room behind /ws until channels land: every message a
// member sends goes to every member, the sender included.
type broadcast struct {
	mu      sync.Mutex // guards members; never held across a Send
	members map[*pulse.Conn]struct{}
}

func newBroadcast() *broadcast {
	return &broadcast{members: make(map[*pulse.Conn]struct{})}
}

// handler returns the callbacks that keep the member set and fan out.
func (b *broadcast) handler() pulse.Handler {
	return pulse.Handler{OnOpen: b.join, OnMessage: b.publish, OnClose: b.leave}
}

func (b *broadcast) join(c *pulse.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.members[c] = struct{}{}
}

func (b *broadcast) leave(c *pulse.Conn, _ *pulse.CloseError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.members, c)
}

// publish sends m to every member. The set is copied under the lock and Send
// is called outside it. Send never blocks: a member too slow to keep up is
// closed by the core with CloseSlowConsumer, and its error is not the
// sender's concern.
func (b *broadcast) publish(_ *pulse.Conn, m pulse.Message) {
	for _, c := range b.snapshot() {
		_ = c.Send(m) // ErrClosed or ErrSlowConsumer: the core has closed c
	}
}

// snapshot returns the members at this moment.
func (b *broadcast) snapshot() []*pulse.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	conns := make([]*pulse.Conn, 0, len(b.members))
	for c := range b.members {
		conns = append(conns, c)
	}
	return conns
}

// echo is the handler behind /echo: every message goes back to its sender
// unchanged, text as text and binary as binary.
var echo = pulse.Handler{
	OnMessage: func(c *pulse.Conn, m pulse.Message) {
		_ = c.Send(m) // a failed Send has closed c
	},
}
