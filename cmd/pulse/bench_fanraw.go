package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse/internal/baseline"
)

// Raw fan-out: against a broadcast endpoint, where every message a
// connection sends is received by every connection on the endpoint (the
// gorilla chat example), or the baseline's rooms. A broadcast endpoint
// whose URL holds {room} has one endpoint per room, {room} replaced by the
// room's number; subscriber i joins room K = i / --room, and each
// publisher joins every room, to send each room's messages on its own
// connection there (what a publisher receives is read and dropped).
// Without {room} there is one room. Before the run, each publisher sends a
// warm-up message (sequence number 0) every 100 ms until every subscriber
// has had one from every publisher: all are members of their rooms.
//
// The fan-out baseline: the same rooms, subscribers, publishers and rate
// against one baseline.Fanout (gorilla's chat hub) per room, in the child.
// Subscriber i joins /room/K; a publisher's connection goes to /publish,
// whose reader hands each message to the hub of the room it names; the
// child says when its hubs hold every subscriber.
//
// Neither has positions: each message carries its publisher and a
// sequence number per publisher and room, so a subscriber counts a gap as
// lost and a number it already passed as duplicated.

// rawPub is a baseline publication, as sent and as delivered.
type rawPub struct {
	Room int   `json:"room"`
	Pub  int   `json:"pub"`
	Seq  int64 `json:"seq"`
	T    int64 `json:"t"`
}

// rawFanout is one raw run's shared state.
type rawFanout struct {
	rooms, room int
	sent        [][]atomic.Int64 // [publisher][room]: the last sequence number sent
	last        [][]atomic.Int64 // [subscriber][publisher]: the last received
	fanCounts
	// Set while connecting, read-only after.
	pubConns [][]*benchConn // [publisher][room], or [publisher][0] for every room
	// The warm-up: warm[i][p] once subscriber i had one from publisher p.
	warm   [][]atomic.Bool
	warmed atomic.Int64 // pairs warm
}

// receive counts one message to subscriber i.
func (f *rawFanout) receive(i int, data []byte, at time.Time) {
	var p rawPub
	if json.Unmarshal(data, &p) != nil || p.Pub < 0 || p.Pub >= len(f.sent) {
		return
	}
	if p.Seq == 0 { // warm-up
		if !f.warm[i][p.Pub].Swap(true) {
			f.warmed.Add(1)
		}
		return
	}
	last := &f.last[i][p.Pub]
	switch prev := last.Load(); {
	case p.Seq <= prev:
		f.dups.Add(1)
		return
	case p.Seq > prev+1:
		f.lost.Add(p.Seq - prev - 1)
	}
	last.Store(p.Seq)
	f.delivers.Add(1)
	f.lat.add(at.Sub(time.Unix(0, p.T)))
}

// tailLost counts, per subscriber, the publications sent to its room that
// it has not received.
func (f *rawFanout) tailLost() int64 {
	var n int64
	for i := range f.last {
		for p := range f.sent {
			n += max(f.sent[p][i/f.room].Load()-f.last[i][p].Load(), 0)
		}
	}
	return n
}

// runFanoutRaw is the fanout scenario on a broadcast endpoint, or the
// baseline's rooms.
func runFanoutRaw(ctx context.Context, b *bench) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	n, per, np := b.cfg.subscribers, b.cfg.room, b.cfg.publishers
	f := &rawFanout{rooms: (n + per - 1) / per, room: per, fanCounts: fanCounts{lat: newWindow()},
		sent: grid(np, (n+per-1)/per), last: grid(n, np), warm: make([][]atomic.Bool, n), pubConns: make([][]*benchConn, np)}
	for i := range f.warm {
		f.warm[i] = make([]atomic.Bool, np)
	}
	subs, pubs := newGroup(), newGroup()
	defer pubs.close()
	defer subs.close()
	w := f.watch(b, subs, pubs)
	defer w.end()
	connect := f.connectBroadcast
	if b.members != nil {
		connect = f.connect
	}
	if err := connect(ctx, b, subs, pubs); err != nil {
		return nil, err
	}
	sent, window, inWindow := publishFor(ctx, b, f, pubs)
	poll(ctx, func() bool { return f.tailLost() == 0 })
	subs.close() // nothing arrives any more: the counts hold still
	pubs.close()
	res := &benchResult{Timeline: w.end(), Latency: map[string]*latencyStats{"delivery": f.lat.all.stats()}}
	res.add("subscribers", float64(subs.cnt.opened.Load()), "")
	res.add("rooms", float64(f.rooms), "")
	res.add("publications sent", float64(sent), "")
	res.add("deliveries", float64(f.delivers.Load()), "")
	res.add("deliveries/s", float64(inWindow)/window.Seconds(), "/s")
	res.add("lost", float64(f.lost.Load()), "")
	res.add("undelivered at the end", float64(f.tailLost()), "")
	res.add("duplicated", float64(f.dups.Load()), "")
	res.add("connections dropped", float64(subs.cnt.dropped.Load()+pubs.cnt.dropped.Load()), "")
	return res, nil
}

func grid(rows, cols int) [][]atomic.Int64 {
	g := make([][]atomic.Int64, rows)
	for i := range g {
		g[i] = make([]atomic.Int64, cols)
	}
	return g
}

// dialRooms dials each room's subscribers, room K's at roomURL(K).
func (f *rawFanout) dialRooms(ctx context.Context, b *bench, subs *group, roomURL func(k int) string) error {
	for k := range f.rooms {
		d := &benchDialer{url: roomURL(k), raw: true}
		count := min(f.room, b.cfg.subscribers-k*f.room)
		err := subs.dialAll(ctx, d, count, b.cfg.concurrency, func(i int, _ *benchConn) func([]byte, time.Time) {
			return func(data []byte, at time.Time) { f.receive(k*f.room+i, data, at) }
		})
		if err != nil {
			return err
		}
	}
	if n := subs.cnt.opened.Load(); n < int64(b.cfg.subscribers) {
		return fmt.Errorf("only %d of %d subscribers connected (%d failures)", n, b.cfg.subscribers, subs.cnt.failures.Load())
	}
	return nil
}

// dialPublishers dials every publisher's connection to roomURL(k), in
// column k of pubConns.
func (f *rawFanout) dialPublishers(ctx context.Context, b *bench, pubs *group, k int, roomURL string) error {
	d := &benchDialer{url: roomURL, raw: true}
	err := pubs.dialAll(ctx, d, b.cfg.publishers, b.cfg.concurrency, func(p int, c *benchConn) func([]byte, time.Time) {
		f.pubConns[p][k] = c
		return nil
	})
	for p := range f.pubConns {
		if err == nil && f.pubConns[p][k] == nil {
			err = fmt.Errorf("publisher %d could not connect to %s", p, roomURL)
		}
	}
	return err
}

// connectBroadcast dials the subscribers and the publishers of a
// broadcast endpoint and warms them up.
func (f *rawFanout) connectBroadcast(ctx context.Context, b *bench, subs, pubs *group) error {
	roomURL := func(k int) string { return strings.ReplaceAll(b.cfg.url, roomVar, strconv.Itoa(k)) }
	if err := f.dialRooms(ctx, b, subs, roomURL); err != nil {
		return err
	}
	for p := range f.pubConns {
		f.pubConns[p] = make([]*benchConn, f.rooms)
	}
	for k := range f.rooms {
		if err := f.dialPublishers(ctx, b, pubs, k, roomURL(k)); err != nil {
			return err
		}
	}
	return f.warmUp(ctx)
}

// roomVar, in a raw fanout's URL, stands for the room's number.
const roomVar = "{room}"

// warmUp sends a warm-up on every publisher's connections every 100 ms
// until every subscriber has had one from every publisher.
func (f *rawFanout) warmUp(ctx context.Context) error {
	want := int64(len(f.warm) * len(f.pubConns))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for f.warmed.Load() < want {
		for p, row := range f.pubConns {
			for k, c := range row {
				data, _ := json.Marshal(rawPub{Room: k, Pub: p, T: time.Now().UnixNano()})
				c.write(data)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d subscribers had a warm-up message from every publisher before --duration ended: "+
				"does every connection of the endpoint receive what each sends?", f.warmedSubscribers(), len(f.warm))
		case <-t.C:
		}
	}
	return nil
}

// warmedSubscribers counts the subscribers warm from every publisher.
func (f *rawFanout) warmedSubscribers() int {
	n := 0
	for i := range f.warm {
		all := true
		for p := range f.warm[i] {
			all = all && f.warm[i][p].Load()
		}
		n += btoi(all)
	}
	return n
}

// connect dials the baseline's rooms and publishers, and waits until the
// hubs hold every subscriber.
func (f *rawFanout) connect(ctx context.Context, b *bench, subs, pubs *group) error {
	err := f.dialRooms(ctx, b, subs, func(k int) string { return fmt.Sprintf("%sroom/%d", b.cfg.url, k) })
	if err != nil {
		return err
	}
	for p := range f.pubConns {
		f.pubConns[p] = make([]*benchConn, 1)
	}
	if err := f.dialPublishers(ctx, b, pubs, 0, b.cfg.url+"publish"); err != nil {
		return err
	}
	poll(ctx, func() bool {
		n, e := b.members()
		err = e
		return e != nil || n == b.cfg.subscribers
	})
	if err == nil && ctx.Err() != nil {
		err = errors.New("the baseline's rooms did not hold every subscriber before --duration ended")
	}
	return err
}

// poll checks done every 10ms until it is true or ctx ends: the counters
// and the child's hubs have no event to wait on.
func poll(ctx context.Context, done func() bool) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishAll publishes at rate per second in all, round robin over the
// publishers and over the rooms, until ctx ends; it returns how many it sent.
func (f *rawFanout) publishAll(ctx context.Context, rate float64, _ *group) int64 {
	np := len(f.pubConns)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for k, row := range f.pubConns {
		wg.Go(func() {
			pace(ctx, rate/float64(np), func(i int64) {
				room := int((i*int64(np) + int64(k)) % int64(f.rooms))
				seq := f.sent[k][room].Load() + 1
				data, _ := json.Marshal(rawPub{Room: room, Pub: k, Seq: seq, T: time.Now().UnixNano()})
				if row[min(room, len(row)-1)].write(data) == nil {
					f.sent[k][room].Store(seq)
					sent.Add(1)
				}
			})
		})
	}
	wg.Wait()
	return sent.Load()
}

// fanoutRooms is the child's side of the fan-out baseline: one
// baseline.Fanout per room, and /publish. Its conns belong to mu.
type fanoutRooms struct {
	rooms    []*baseline.Fanout
	upgrader websocket.Upgrader
	mu       sync.Mutex
	conns    map[*websocket.Conn]struct{}
	closed   bool
	readers  sync.WaitGroup
	stop     context.CancelFunc
	hubs     sync.WaitGroup
}

// newFanoutRooms starts n rooms' hubs, held to the heartbeat rule.
func newFanoutRooms(n int, interval, timeout time.Duration) *fanoutRooms {
	ctx, cancel := context.WithCancel(context.Background())
	fr := &fanoutRooms{stop: cancel, conns: map[*websocket.Conn]struct{}{}}
	for range n {
		room := baseline.NewFanout(interval, timeout)
		fr.rooms = append(fr.rooms, room)
		fr.hubs.Go(func() { room.Run(ctx) })
	}
	return fr
}

// handler routes /room/K to room K's hub and /publish to publish.
func (fr *fanoutRooms) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/room/{k}", func(w http.ResponseWriter, r *http.Request) {
		var k int
		if _, err := fmt.Sscan(r.PathValue("k"), &k); err != nil || k < 0 || k >= len(fr.rooms) {
			http.NotFound(w, r)
			return
		}
		fr.rooms[k].ServeHTTP(w, r)
	})
	mux.HandleFunc("/publish", fr.publish)
	return mux
}

// publish reads a publisher's messages and broadcasts each to its room,
// as a member's reader does in the chat pattern.
func (fr *fanoutRooms) publish(w http.ResponseWriter, r *http.Request) {
	ws, err := fr.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	fr.mu.Lock()
	if fr.closed {
		fr.mu.Unlock()
		ws.Close()
		return
	}
	fr.conns[ws] = struct{}{}
	fr.readers.Add(1)
	fr.mu.Unlock()
	defer fr.readers.Done()
	defer ws.Close()
	ws.SetReadLimit(64 << 10)
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var p rawPub
		if json.Unmarshal(msg, &p) == nil && p.Room >= 0 && p.Room < len(fr.rooms) {
			fr.rooms[p.Room].Broadcast(msg)
		}
	}
}

// members is how many subscribers the hubs hold.
func (fr *fanoutRooms) members() int {
	n := 0
	for _, room := range fr.rooms {
		n += room.Len()
	}
	return n
}

// close ends the publishers' readers and the hubs, and waits for them.
func (fr *fanoutRooms) close() {
	fr.mu.Lock()
	fr.closed = true
	for ws := range fr.conns {
		ws.Close()
	}
	fr.mu.Unlock()
	fr.readers.Wait()
	fr.stop()
	fr.hubs.Wait()
}
