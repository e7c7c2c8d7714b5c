package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse/chaos"
	"github.com/pulse-go/pulse/client"
)

// "pulse bench storm": N clients of the real Go client (backoff, resume)
// subscribed in rooms of --room, one more publishing --rate messages per
// second; then the break: the server restarted (SIGTERM to --pid, then
// --restart-cmd), or every connection cut by a chaos proxy the bench puts
// in front of the server (--chaos). It reports how long until 50, 90, 99
// and 100 % of the clients were back, the most clients welcomed in one
// second, and, by the sequence number each publication carries, the
// acknowledged publications a subscriber back by the end never got (lost)
// or got twice; those of clients not back are counted apart.

// stormClient is one subscriber. Its fields belong to the client's
// callbacks (one at a time, on its Run goroutine) until Run returns.
type stormClient struct {
	c    *client.Client
	room int
	seen []uint64 // bitset of the room's publications received, by seq/rooms
	dups int64
	back bool // open again after the break
	open bool // its connection is open now
	gens atomic.Int64
}

// storm is one run's shared state: in the parent, the publisher's side
// and, once merged, every client's figures; in a child (see
// bench_stormfleet.go), its share of the clients.
type storm struct {
	rooms   []string
	n, room int            // clients in all, and per room
	clients []*stormClient // this process's; a parent with children gets theirs at the end
	start   time.Time
	// raw: the clients are plain WebSocket ones of url, the baseline's
	// (see bench_stormraw.go).
	raw       bool
	url       string
	rawCounts counters
	// local is the address this process's clients dial from (a child's
	// 127.0.0.K); nil: the system's choice.
	local net.IP

	opened   atomic.Int64 // clients open at least once
	openNow  atomic.Int64 // clients open now
	breakAt  atomic.Int64 // UnixNano of the break, 0 before
	backMu   sync.Mutex   // guards back and opens
	back     []time.Duration
	opens    []time.Time // every welcome, for the highest rate
	ready    chan struct{}
	slots    chan struct{} // the ramp: one per client dialling its first connection
	readyN   atomic.Int64
	unrecov  atomic.Int64 // resubscriptions the server could not replay
	delivers atomic.Int64
	lat      *window

	ackMu sync.Mutex // guards acked
	acked []int64    // seqs acknowledged to the publisher
	sent  atomic.Int64

	refused      atomic.Int64 // publishes the server answered with an error
	firstRefusal atomic.Pointer[client.ServerError]
	rampErr      atomic.Pointer[error] // the latest failed first dial, to explain a ramp that never ends
}

func newStorm(n, room int) *storm {
	var id [4]byte
	rand.Read(id[:])
	var rooms []string
	for k := range (n + room - 1) / room {
		rooms = append(rooms, fmt.Sprintf("bench:storm:%s:%d", hex.EncodeToString(id[:]), k))
	}
	return stormOf(rooms, n, room)
}

// stormOf is the state of a storm of n clients over rooms, room a room.
func stormOf(rooms []string, n, room int) *storm {
	return &storm{rooms: rooms, n: n, room: room, ready: make(chan struct{}), lat: newWindow(), start: time.Now()}
}

// newClient makes subscriber i of url.
func (s *storm) newClient(url string, i, room int) *stormClient {
	sc := &stormClient{room: i / room}
	if s.raw {
		s.url = url
		return sc
	}
	sc.c = client.New(url, &client.Options{
		LocalIP:      s.local,
		QueueSize:    16,
		OnState:      func(ch client.StateChange) { s.state(sc, ch) },
		OnMessage:    func(m client.Message) { s.message(sc, m) },
		OnSubscribed: func(sub client.Subscribed) { s.subscribed(sc, sub) },
	})
	return sc
}

func (s *storm) state(sc *stormClient, ch client.StateChange) {
	switch ch.State {
	case client.StateOpen:
		now := time.Now()
		sc.open = true
		s.openNow.Add(1)
		s.backMu.Lock()
		s.opens = append(s.opens, now)
		// Back: the first welcome after the break, whether the client
		// lost its connection at the break or a moment before it.
		if b := s.breakAt.Load(); b != 0 && !sc.back {
			s.back = append(s.back, now.Sub(time.Unix(0, b)))
			sc.back = true
		}
		s.backMu.Unlock()
		if sc.gens.Add(1) == 1 {
			s.opened.Add(1)
			<-s.slots
			s.firstOpen()
		}
	case client.StateReconnecting, client.StateClosed:
		if ch.Err != nil && sc.gens.Load() == 0 {
			s.rampErr.Store(&ch.Err)
		}
		if sc.open {
			sc.open = false
			s.openNow.Add(-1)
		}
	}
}

// rampError says that the clients did not all open, and why the latest
// first dial that failed did.
func (s *storm) rampError() error {
	err := fmt.Errorf("only %d of %d clients were open before --duration ended", s.opened.Load(), len(s.clients))
	last := s.rampErr.Load()
	if last == nil {
		return err
	}
	err = fmt.Errorf("%w; the latest failed dial: %v", err, *last)
	if strings.Contains((*last).Error(), "503") {
		err = fmt.Errorf("%w; %s", err, serverLimitsHint)
	}
	return err
}

func (s *storm) subscribed(sc *stormClient, sub client.Subscribed) {
	if sub.Resumed && !sub.Recovered {
		s.unrecov.Add(1)
	}
	if sc.gens.Load() == 1 && s.readyN.Add(1) == int64(len(s.clients)) {
		close(s.ready)
	}
}

// message records one delivery by its seq.
func (s *storm) message(sc *stormClient, m client.Message) {
	var p publication
	if json.Unmarshal(m.Data, &p) != nil || p.Seq <= 0 {
		return
	}
	k := int((p.Seq - 1) / int64(len(s.rooms)))
	for len(sc.seen) <= k/64 {
		sc.seen = append(sc.seen, 0)
	}
	if sc.seen[k/64]&(1<<(k%64)) != 0 {
		sc.dups++
		return
	}
	sc.seen[k/64] |= 1 << (k % 64)
	s.delivers.Add(1)
	if !m.Replayed {
		s.lat.add(time.Since(time.Unix(0, p.T)))
	}
}

// runStorm is "pulse bench storm".
func runStorm(ctx context.Context, b *bench) (*benchResult, error) {
	if b.cfg.restartCmd == "" && !b.cfg.chaos && b.cfg.pid == 0 {
		return nil, errors.New("say how to break the connections: --restart-cmd (with --pid for a SIGTERM first) or --chaos")
	}
	life := ctx // children live until the run's hard limit at most
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	// One dial first: a server that is not there, or does not speak
	// pulse.v1, is said once, not retried by N clients until the end.
	probe, err := (&benchDialer{url: b.cfg.url, raw: b.cfg.raw}).dial(ctx, 10*time.Second)
	if err != nil {
		return nil, err
	}
	probe.close()
	target, proxy, err := b.stormTarget()
	if err != nil {
		return nil, err
	}
	if proxy != nil {
		defer proxy.Close()
	}
	s := newStorm(b.cfg.n, b.cfg.room)
	s.raw = b.cfg.raw
	runCtx, stopClients := context.WithCancel(context.WithoutCancel(ctx))
	var runs sync.WaitGroup
	defer runs.Wait()
	defer stopClients()
	var crowd sharedCrowd
	var r rate
	w := b.watch("clients back", func() sample {
		c := crowd.counts(true)
		return sample{Open: c.Open, Rate: r.per(c.Back), P99: c.P99}
	})
	defer w.end()
	c, err := b.startCrowd(ctx, life, s, &crowd, func(ctx context.Context) error {
		for i := range b.cfg.n {
			s.clients = append(s.clients, s.newClient(target, i, b.cfg.room))
		}
		return s.connect(ctx, runCtx, &runs, b.cfg.concurrency)
	}, func() { stopClients(); runs.Wait() })
	if c != nil {
		defer c.finish(nil) // on an error; run finishes it otherwise
	}
	if err != nil {
		return nil, err
	}
	// The publisher is the instrument, not a subject: it comes back after
	// a second at most, so that the acks that count losses arrive. A raw
	// storm (the baseline's) has none.
	var pub *client.Client
	if !b.cfg.raw {
		pub = client.New(target, &client.Options{QueueSize: 1 << 16,
			Backoff: func(n int) time.Duration { return client.Backoff(n, 100*time.Millisecond, time.Second, nil) }})
		runs.Go(func() { pub.Run(runCtx) })
	}
	res, err := s.run(ctx, b, pub, proxy, w, c)
	if res != nil {
		if !b.cfg.chaos {
			before = nil // a new server: its counters start again
		}
		res.Server = serverFigures(before, res.Server)
	}
	return res, err
}

// stormTarget is the URL the clients dial: the server's, or with --chaos
// a proxy's in front of it.
func (b *bench) stormTarget() (string, *chaos.Proxy, error) {
	if !b.cfg.chaos {
		return b.cfg.url, nil, nil
	}
	u, _ := url.Parse(b.cfg.url)
	p, err := chaos.Listen("127.0.0.1:0", u.Host)
	if err != nil {
		return "", nil, fmt.Errorf("chaos proxy: %w", err)
	}
	u.Host = p.Addr()
	return u.String(), p, nil
}

// connect starts the clients, concurrency dialling at a time, and waits
// until every one is open and subscribed.
func (s *storm) connect(ctx, runCtx context.Context, runs *sync.WaitGroup, concurrency int) error {
	now, cancel := context.WithCancel(ctx)
	cancel()
	for _, sc := range s.clients {
		if !s.raw {
			sc.c.Subscribe(now, s.rooms[sc.room], nil) // requested; confirmed through OnSubscribed
		}
	}
	s.slots = make(chan struct{}, concurrency)
	for _, sc := range s.clients {
		select {
		case s.slots <- struct{}{}: // freed by the client's first welcome
		case <-ctx.Done():
			return s.rampError()
		}
		s.startClient(runCtx, runs, sc)
	}
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		if s.opened.Load() < int64(len(s.clients)) {
			return s.rampError()
		}
		return fmt.Errorf("only %d of %d clients were open and subscribed before --duration ended", s.readyN.Load(), len(s.clients))
	}
}

// run publishes, breaks the connections, waits for the clients to come
// back and for the publications to arrive, and counts.
func (s *storm) run(ctx context.Context, b *bench, pub *client.Client, proxy *chaos.Proxy, w *watcher, crowd stormCrowd) (*benchResult, error) {
	drain := min(max(b.cfg.duration/5, time.Second), 5*time.Second)
	pubCtx, stopPub := context.WithDeadline(ctx, deadlineOf(ctx).Add(-drain))
	ackCtx, stopAcks := context.WithCancel(ctx)
	acks := make(chan stormAck, 1<<16)
	var pubs sync.WaitGroup
	defer func() { stopPub(); stopAcks(); pubs.Wait() }() // at once, on an error
	if pub != nil {
		pubs.Go(func() { s.publish(pubCtx, pub, b.cfg.rate, acks) })
		pubs.Go(func() { s.collectAcks(ackCtx, acks) })
	}
	sleepCtx(pubCtx, min(max(b.cfg.duration/10, 300*time.Millisecond), 2*time.Second))
	admitted := b.sampleAdmissions(ctx)
	breakAt := time.Now()
	s.breakAt.Store(breakAt.UnixNano())
	if err := crowd.breakAll(breakAt); err != nil {
		return nil, err
	}
	restart, err := b.breakServer(pubCtx, proxy)
	if err != nil {
		return nil, err
	}
	allBack := s.awaitBack(pubCtx, crowd)
	if pub != nil {
		for pub.State() != client.StateOpen && pubCtx.Err() == nil {
			sleepCtx(pubCtx, 10*time.Millisecond) // the publisher is back too
		}
		sleepCtx(pubCtx, min(time.Second, time.Until(deadlineOf(pubCtx)))) // publications flow again
	}
	stopPub()
	late := time.AfterFunc(drain, stopAcks) // acks of the last publications: a drain at most
	pubs.Wait()
	late.Stop()
	deliverCtx, cancel := context.WithTimeout(ctx, drain)
	s.awaitDeliveries(deliverCtx, crowd) // lost ones never come: wait a drain at most
	cancel()
	after, _ := b.scrape(context.WithoutCancel(ctx))
	highest := admitted.end()
	timeline := w.end()
	finishErr := crowd.finish(s) // the clients' figures are in s from here
	if restart != nil {
		reap(restart)
	}
	if finishErr != nil {
		return nil, finishErr
	}
	res := &benchResult{Timeline: timeline, Server: after}
	if !s.raw {
		res.Latency = map[string]*latencyStats{"delivery": s.lat.all.stats()}
	}
	s.figures(res, allBack, highest)
	if e := s.firstRefusal.Load(); e != nil {
		fmt.Fprintf(b.stderr, "bench: %d publishes refused; the first: %v (a pulse server limits each connection's publishes: pulse serve --publish-rate)\n", s.refused.Load(), e)
	}
	return res, nil
}

// stormAck is one publish waiting for its acknowledgement.
type stormAck struct {
	seq int64
	ack *client.Ack
}

// publish sends rate publications per second, round robin over the rooms,
// until ctx ends; the publisher's queue holds them while it is offline.
func (s *storm) publish(ctx context.Context, pub *client.Client, rate float64, acks chan<- stormAck) {
	defer close(acks)
	pace(ctx, rate, func(i int64) {
		data, _ := json.Marshal(publication{T: time.Now().UnixNano(), Seq: i + 1})
		ack, err := pub.Send(s.rooms[i%int64(len(s.rooms))], data, nil)
		if err != nil {
			return
		}
		s.sent.Add(1)
		select {
		case acks <- stormAck{seq: i + 1, ack: ack}:
		case <-ctx.Done():
		}
	})
}

// collectAcks records the seq of every publish the server acknowledged.
func (s *storm) collectAcks(ctx context.Context, acks <-chan stormAck) {
	for a := range acks {
		_, err := a.ack.Wait(ctx)
		var refused *client.ServerError
		switch {
		case err == nil:
			s.ackMu.Lock()
			s.acked = append(s.acked, a.seq)
			s.ackMu.Unlock()
		case errors.As(err, &refused):
			if s.refused.Add(1) == 1 {
				s.firstRefusal.Store(refused)
			}
		}
	}
}

// breakServer breaks every connection: the proxy cuts them, or the server
// gets SIGTERM and the restart command runs. The command is returned
// running, not waited for: it may be the new server.
func (b *bench) breakServer(ctx context.Context, proxy *chaos.Proxy) (*exec.Cmd, error) {
	if proxy != nil {
		for _, l := range proxy.Links() {
			l.Cut()
		}
		return nil, nil
	}
	if b.cfg.pid != 0 {
		if err := terminate(b.cfg.pid); err != nil {
			return nil, fmt.Errorf("SIGTERM to --pid %d: %w", b.cfg.pid, err)
		}
		for !processGone(b.cfg.pid) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // not our child: nothing to wait on but its pid
		}
	}
	if b.cfg.restartCmd == "" {
		return nil, nil
	}
	cmd := exec.Command("sh", "-c", b.cfg.restartCmd)
	if f, ok := b.stderr.(*os.File); ok {
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--restart-cmd: %w", err)
	}
	return cmd, nil
}

// awaitBack waits until every client lost at the break is open again, or
// ctx ends; it reports whether they all came back. (The times come from
// the clients themselves: the polling only decides when to stop.)
func (s *storm) awaitBack(ctx context.Context, crowd stormCrowd) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if crowd.counts(false).Back == int64(s.n) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// expected is how many deliveries the acknowledged publications make:
// room r holds clients r*room to (r+1)*room-1.
func (s *storm) expected() int64 {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	var n int64
	for _, seq := range s.acked {
		r := int((seq - 1) % int64(len(s.rooms)))
		n += int64(min(s.room, s.n-r*s.room))
	}
	return n
}

// awaitDeliveries waits until the acknowledged publications have all been
// delivered, or ctx ends.
func (s *storm) awaitDeliveries(ctx context.Context, crowd stormCrowd) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for crowd.counts(false).Delivers < s.expected() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// figures fills res once the clients have stopped; admitted is the
// server's highest count of upgrades admitted in a second, -1 if unknown.
func (s *storm) figures(res *benchResult, allBack bool, admitted float64) {
	n := len(s.clients)
	back := slices.Clone(s.back)
	slices.Sort(back)
	res.add("clients", float64(n), "")
	res.add("clients back", float64(len(back)), "")
	for _, q := range []struct {
		name string
		frac float64
	}{{"50 % back", 0.5}, {"90 % back", 0.9}, {"99 % back", 0.99}, {"100 % back", 1}} {
		if k := int(q.frac*float64(n)+0.999999) - 1; k < len(back) && k >= 0 {
			res.add(q.name, back[k].Seconds(), "s")
		}
	}
	res.add("highest welcomes in one second", float64(maxPerSecond(s.opens, time.Unix(0, s.breakAt.Load()))), "/s")
	if admitted >= 0 {
		res.add("highest admitted in one second, server's count", admitted, "/s")
	}
	if s.raw {
		return // no publications: lost and duplicated do not apply
	}
	var lost, missed, dups int64
	s.ackMu.Lock()
	for _, sc := range s.clients {
		dups += sc.dups
		n := s.missing(sc)
		if sc.back {
			lost += n
		} else {
			missed += n
		}
	}
	res.add("publications sent", float64(s.sent.Load()), "")
	res.add("publications acknowledged", float64(len(s.acked)), "")
	s.ackMu.Unlock()
	res.add("publishes refused", float64(s.refused.Load()), "")
	res.add("deliveries", float64(s.delivers.Load()), "")
	res.add("lost", float64(lost), "")
	res.add("undelivered to clients not back", float64(missed), "")
	res.add("duplicated", float64(dups), "")
	res.add("resubscriptions not recovered", float64(s.unrecov.Load()), "")
}

// missing counts the acknowledged publications of sc's room it did not
// get. The caller holds ackMu.
func (s *storm) missing(sc *stormClient) int64 {
	var n int64
	for _, seq := range s.acked {
		if int((seq-1)%int64(len(s.rooms))) != sc.room {
			continue
		}
		k := int((seq - 1) / int64(len(s.rooms)))
		if k/64 >= len(sc.seen) || sc.seen[k/64]&(1<<(k%64)) == 0 {
			n++
		}
	}
	return n
}

// maxPerSecond is the most times within any one second after from.
func maxPerSecond(times []time.Time, from time.Time) int {
	var after []time.Time
	for _, t := range times {
		if !t.Before(from) {
			after = append(after, t)
		}
	}
	slices.SortFunc(after, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range after {
		for after[i].Sub(after[j]) >= time.Second {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
