package baseline

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Fanout is one broadcast room in the gorilla chat pattern, the baseline of
// pulse's fan-out benchmark (modelled on the description of
// gorilla/websocket's examples/chat/hub.go and client.go, written afresh).
//
// One hub goroutine, Run, owns the set of members. Connections reach it
// through three unbuffered channels: register, unregister and broadcast.
// For each broadcast it offers the message to every member's buffered send
// channel without blocking; a member whose buffer is full is dropped (its
// send channel closed, so its writer sends a close frame and ends). Every
// member has two goroutines for its whole life: a reader, with the pong
// deadline of Server and whose messages are broadcast to the room, and a
// writer, the connection's only writer, which writes each queued message
// and a ping frame every interval.
//
// One difference from the example: its writer joins the messages queued at
// the moment into one frame, separated by newlines. This one writes one
// frame per message, as pulse does and as clients of a JSON protocol need,
// so that both sides of the benchmark do the same work per delivery.
type Fanout struct {
	// Set by NewFanout, never changes.
	interval   time.Duration // pingPeriod
	pongWait   time.Duration // interval+timeout
	upgrader   websocket.Upgrader
	register   chan *member
	unregister chan *member
	broadcast  chan []byte
	stopped    chan struct{} // closed when Run's hub loop has ended
	changed    func()        // set by tests before Run: told of every join and leave

	members atomic.Int64 // written by the hub goroutine only
	dropped atomic.Int64 // members dropped because their send buffer was full
}

// member is one connection of a Fanout.
type member struct {
	ws   *websocket.Conn
	send chan []byte // closed by the hub goroutine only
}

// NewFanout returns a room that pings every interval and drops a member
// that sends no pong for interval+timeout. It starts nothing: Run is the
// hub goroutine, and connections wait for it.
func NewFanout(interval, timeout time.Duration) *Fanout {
	return &Fanout{
		interval:   interval,
		pongWait:   interval + timeout,
		upgrader:   websocket.Upgrader{ReadBufferSize: bufferSize, WriteBufferSize: bufferSize},
		register:   make(chan *member),
		unregister: make(chan *member),
		broadcast:  make(chan []byte),
		stopped:    make(chan struct{}),
	}
}

// ServeHTTP upgrades the request and registers the connection with the hub.
func (f *Fanout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := f.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	m := &member{ws: ws, send: make(chan []byte, sendBuffer)}
	select {
	case f.register <- m:
	case <-f.stopped:
		ws.Close()
	}
}

// Broadcast hands msg to the hub goroutine, waiting for it to take it, and
// returns; the hub queues it for every member. After Run has ended it does
// nothing. msg must not be changed afterwards.
func (f *Fanout) Broadcast(msg []byte) {
	select {
	case f.broadcast <- msg:
	case <-f.stopped:
	}
}

// notify tells a test that the member count may have changed.
func (f *Fanout) notify() {
	if f.changed != nil {
		f.changed()
	}
}

// Len returns the number of members the hub holds.
func (f *Fanout) Len() int { return int(f.members.Load()) }

// Dropped returns how many members were dropped as too slow.
func (f *Fanout) Dropped() int64 { return f.dropped.Load() }

// Run is the hub goroutine: it registers and unregisters members and
// fans broadcasts out until ctx is done. Then it refuses new connections,
// closes every member and returns once their goroutines have ended. The
// members' goroutines are started here, so that Run can wait for them.
func (f *Fanout) Run(ctx context.Context) {
	var pumps sync.WaitGroup
	members := make(map[*member]struct{})
	leave := func(m *member) {
		if _, ok := members[m]; ok {
			delete(members, m)
			close(m.send)
			f.members.Store(int64(len(members)))
			f.notify()
		}
	}
	for {
		select {
		case m := <-f.register:
			members[m] = struct{}{}
			f.members.Store(int64(len(members)))
			f.notify()
			pumps.Add(2)
			go func() { defer pumps.Done(); f.writePump(m) }()
			go func() { defer pumps.Done(); f.readPump(m) }()
		case m := <-f.unregister:
			leave(m)
		case msg := <-f.broadcast:
			for m := range members {
				select {
				case m.send <- msg:
				default:
					f.dropped.Add(1)
					leave(m)
				}
			}
		case <-ctx.Done():
			close(f.stopped)
			for m := range members {
				leave(m)
				m.ws.Close() // a writer blocked on a slow peer returns now
			}
			pumps.Wait()
			return
		}
	}
}

// readPump reads until the socket fails or the pong deadline passes, and
// broadcasts what it reads to the room.
func (f *Fanout) readPump(m *member) {
	defer func() {
		select {
		case f.unregister <- m:
		case <-f.stopped:
		}
		m.ws.Close()
	}()
	m.ws.SetReadLimit(maxMessageSize)
	m.ws.SetReadDeadline(time.Now().Add(f.pongWait))
	m.ws.SetPongHandler(func(string) error {
		return m.ws.SetReadDeadline(time.Now().Add(f.pongWait))
	})
	for {
		_, msg, err := m.ws.ReadMessage()
		if err != nil {
			return
		}
		f.Broadcast(msg)
	}
}

// writePump is the member's only writer: queued messages and pings. It
// ends when the hub closes the send channel or a write fails.
func (f *Fanout) writePump(m *member) {
	ticker := time.NewTicker(f.interval)
	defer func() {
		ticker.Stop()
		m.ws.Close()
	}()
	for {
		select {
		case msg, ok := <-m.send:
			m.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				m.ws.WriteMessage(websocket.CloseMessage, nil)
				return
			}
			if err := m.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			m.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := m.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}
