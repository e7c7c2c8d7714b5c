package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse/chaos"
	"github.com/pulse-go/pulse/internal/fleet"
)

// A storm's clients run in this process while their files fit in it (one
// per client, three with --chaos: the proxy holds two more); beyond, in
// children, this binary again (see bench_fleet.go), each with its share
// of the clients and, with --chaos, a fault proxy of its own in front of
// the server, listening on the child's source address 127.0.0.K. A child
// answers "stats" (with "p99", the p99 of its deliveries since the last
// such question) with a stormCounts; "break T" (UnixNano) marks the break
// and cuts its proxy's links; when its input ends it stops its clients
// and writes a stormShare: every figure the parent needs to count as if
// the clients had been its own.

// stormJob is a child's share of a storm: clients First to First+N-1 of
// Total, Room a room.
type stormJob struct {
	Rooms []string `json:"rooms"`
	Total int      `json:"total"`
	First int      `json:"first"`
	N     int      `json:"n"`
	Room  int      `json:"room"`
	Chaos bool     `json:"chaos,omitempty"`
	Raw   bool     `json:"raw,omitempty"` // plain WebSocket clients (the baseline's)
}

// stormCounts is what the run watches while the clients run.
type stormCounts struct {
	Open     int64   `json:"open"`
	Back     int64   `json:"back"`
	Delivers int64   `json:"delivers"`
	P99      float64 `json:"p99,omitempty"`
	Err      string  `json:"error,omitempty"` // the ramp's
}

// stormShare is what a child's clients counted, for the parent to merge.
type stormShare struct {
	Back     []int64       `json:"back"`  // ns from the break until each client was open again
	Opens    []int64       `json:"opens"` // UnixNano of every welcome
	Clients  []stormResult `json:"clients"`
	Delivers int64         `json:"delivers"`
	Unrecov  int64         `json:"unrecovered"`
	Lat      *histData     `json:"latency"`
}

// stormResult is one client's figures.
type stormResult struct {
	Room int      `json:"r"`
	Back bool     `json:"b,omitempty"`
	Dups int64    `json:"d,omitempty"`
	Seen []uint64 `json:"s"`
}

// stormCrowd runs the storm's clients: in this process or in children.
type stormCrowd interface {
	// counts adds up the clients' counts; p99 also takes the p99 since
	// the last such call.
	counts(p99 bool) stormCounts
	// breakAll marks the break, at, and with --chaos cuts the children's
	// proxies.
	breakAll(at time.Time) error
	// finish stops the clients and, s not nil, merges their figures into
	// s. It may be called again; then it does nothing.
	finish(s *storm) error
}

// startCrowd starts the storm's clients and returns once every one is
// open and subscribed: in this process by connect (stop stops them), or
// in children when their files do not fit in one process.
// The watcher sees the crowd from the start in this process, once the
// children are ready otherwise.
func (b *bench) startCrowd(ctx, life context.Context, s *storm, shown *sharedCrowd, connect func(context.Context) error, stop func()) (stormCrowd, error) {
	per := b.stormPerProcess()
	if b.cfg.n+1 <= per {
		local := &localCrowd{s: s, stop: stop}
		shown.set(local)
		return local, connect(ctx)
	}
	k := (b.cfg.n + per - 1) / per
	f := &fleetCrowd{}
	var err error
	f.children, err = startChildren(life, k, func(i int) holdJob {
		first, share := b.cfg.n*i/k, b.cfg.n*(i+1)/k-b.cfg.n*i/k
		job := b.childJob(ctx, i, k)
		job.Storm = &stormJob{Rooms: s.rooms, Total: b.cfg.n, First: first, N: share, Room: b.cfg.room, Chaos: b.cfg.chaos, Raw: b.cfg.raw}
		return job
	})
	if err != nil {
		f.finish(nil)
		return nil, err
	}
	if err := f.ready(); err != nil {
		f.finish(nil)
		return nil, err
	}
	shown.set(f)
	return f, nil
}

// stormPerProcess is how many clients one process runs.
func (b *bench) stormPerProcess() int {
	if b.cfg.chaos {
		return b.cfg.perProcess / 3 // the client's socket and the proxy's two
	}
	return b.cfg.perProcess
}

// localCrowd is the clients of this process.
type localCrowd struct {
	s    *storm
	stop func()
	once sync.Once
}

func (c *localCrowd) counts(p99 bool) stormCounts { return c.s.counts(p99) }

func (c *localCrowd) breakAll(time.Time) error { return nil } // run marks s itself

func (c *localCrowd) finish(*storm) error {
	c.once.Do(c.stop)
	return nil
}

// counts is what this process's clients counted so far.
func (s *storm) counts(p99 bool) stormCounts {
	s.backMu.Lock()
	back := int64(len(s.back))
	s.backMu.Unlock()
	c := stormCounts{Open: s.openNow.Load(), Back: back, Delivers: s.delivers.Load()}
	if p99 {
		c.P99 = s.lat.p99()
	}
	return c
}

// fleetCrowd is the clients of the children. mu keeps one question at a
// time on each child's line protocol.
type fleetCrowd struct {
	mu       sync.Mutex
	children []*child
	done     bool
}

// ready waits for every child's ramp and returns the first error of one.
func (f *fleetCrowd) ready() error {
	if err := awaitReady(f.children); err != nil {
		return err
	}
	if c := f.counts(false); c.Err != "" {
		return errors.New(c.Err)
	}
	return nil
}

func (f *fleetCrowd) counts(p99 bool) stormCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum stormCounts
	if f.done {
		return sum
	}
	for _, c := range f.children {
		var s stormCounts
		err := c.ask("stats", statsArgs(p99), &s)
		if err != nil {
			s.Err = err.Error()
		}
		sum.Open, sum.Back, sum.Delivers = sum.Open+s.Open, sum.Back+s.Back, sum.Delivers+s.Delivers
		sum.P99 = max(sum.P99, s.P99)
		if sum.Err == "" {
			sum.Err = s.Err
		}
	}
	return sum
}

// breakAll tells every child first, then reads their answers: the cuts
// happen together.
func (f *fleetCrowd) breakAll(at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.children {
		fmt.Fprintf(c.in, "break %d\n", at.UnixNano())
	}
	var errs []error
	for _, c := range f.children {
		_, err := c.next("break")
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// finish stops the children, all at once, and merges what they counted.
func (f *fleetCrowd) finish(s *storm) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil
	}
	f.done = true
	shares := make([]stormShare, len(f.children))
	errs := make([]error, len(f.children))
	var wg sync.WaitGroup
	for i, c := range f.children {
		wg.Go(func() {
			line, err := c.stopLine()
			if err == nil && s != nil {
				err = json.Unmarshal([]byte(line), &shares[i])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if s != nil {
		for i := range shares {
			s.merge(&shares[i])
		}
	}
	return errors.Join(errs...)
}

// ask sends "verb args" and decodes the answer into v.
func (c *child) ask(verb, args string, v any) error {
	fmt.Fprintf(c.in, "%s %s\n", verb, args)
	line, err := c.next(verb)
	if err == nil {
		err = json.Unmarshal([]byte(line), v)
	}
	return err
}

// merge adds a child's figures to s.
func (s *storm) merge(sh *stormShare) {
	s.backMu.Lock()
	for _, d := range sh.Back {
		s.back = append(s.back, time.Duration(d))
	}
	for _, t := range sh.Opens {
		s.opens = append(s.opens, time.Unix(0, t))
	}
	s.backMu.Unlock()
	for _, r := range sh.Clients {
		s.clients = append(s.clients, &stormClient{room: r.Room, back: r.Back, dups: r.Dups, seen: r.Seen})
	}
	s.delivers.Add(sh.Delivers)
	s.unrecov.Add(sh.Unrecov)
	if sh.Lat != nil {
		s.lat.all.merge(sh.Lat)
	}
}

// share is what this process's clients counted, once they have stopped.
func (s *storm) share() *stormShare {
	sh := &stormShare{Delivers: s.delivers.Load(), Unrecov: s.unrecov.Load(), Lat: s.lat.all.data()}
	s.backMu.Lock()
	for _, d := range s.back {
		sh.Back = append(sh.Back, int64(d))
	}
	for _, t := range s.opens {
		sh.Opens = append(sh.Opens, t.UnixNano())
	}
	s.backMu.Unlock()
	for _, sc := range s.clients {
		sh.Clients = append(sh.Clients, stormResult{Room: sc.room, Back: sc.back, Dups: sc.dups, Seen: sc.seen})
	}
	return sh
}

// stormWorker is a child's side of a storm: its share of the clients,
// through its own proxy with --chaos, until its input ends.
func stormWorker(ctx context.Context, job holdJob, in io.Reader, out io.Writer) error {
	sj := job.Storm
	s := stormOf(sj.Rooms, sj.Total, sj.Room)
	s.raw, s.local = sj.Raw, net.ParseIP(job.Local) // nil when Local is ""
	target, proxy := job.URL, (*chaos.Proxy)(nil)
	if sj.Chaos {
		var err error
		if target, proxy, err = childProxy(job.URL, job.Local); err != nil {
			return fmt.Errorf("bench worker: chaos proxy: %w", err)
		}
		defer proxy.Close()
	}
	for i := sj.First; i < sj.First+sj.N; i++ {
		s.clients = append(s.clients, s.newClient(target, i, sj.Room))
	}
	runCtx, stopClients := context.WithCancel(context.WithoutCancel(ctx))
	defer stopClients()
	var runs sync.WaitGroup
	rampCtx, cancel := context.WithDeadline(ctx, job.Deadline)
	rampErr := s.connect(rampCtx, runCtx, &runs, job.Concurrency)
	cancel()
	var stopped atomic.Bool
	answer := func(verb, args string) (string, bool) {
		switch verb {
		case "stats":
			c := stormCounts{}
			if !stopped.Load() {
				c = s.counts(args == "p99")
			}
			if rampErr != nil {
				c.Err = rampErr.Error()
			}
			data, _ := json.Marshal(c)
			return string(data), true
		case "break":
			return s.breakHere(args, proxy), true
		}
		return "", false
	}
	return fleet.Serve(fleetName, in, out, answer, func() string {
		stopped.Store(true)
		stopClients()
		runs.Wait()
		data, _ := json.Marshal(s.share())
		return string(data)
	})
}

// breakHere marks the break at the parent's time (UnixNano in args) and
// cuts the proxy's links, if any.
func (s *storm) breakHere(args string, proxy *chaos.Proxy) string {
	at, err := strconv.ParseInt(args, 10, 64)
	if err != nil {
		return "bad time " + strconv.Quote(args)
	}
	s.breakAt.Store(at)
	if proxy != nil {
		for _, l := range proxy.Links() {
			l.Cut()
		}
	}
	return "ok"
}

// childProxy starts a child's fault proxy in front of the server, on its
// source address (127.0.0.1 if none), dialing the server from it too, and
// returns the URL through it.
func childProxy(target, local string) (string, *chaos.Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, err
	}
	listen := local
	if listen == "" {
		listen = "127.0.0.1"
	}
	p, err := chaos.Listen(listen+":0", u.Host)
	if err != nil {
		return "", nil, err
	}
	p.SetDialFrom(net.ParseIP(local))
	u.Host = p.Addr()
	return u.String(), p, nil
}

// sharedCrowd is the crowd the watcher reads while the run sets it up:
// zero counts until set.
type sharedCrowd struct {
	c atomic.Pointer[stormCrowd]
}

func (s *sharedCrowd) set(c stormCrowd) { s.c.Store(&c) }

func (s *sharedCrowd) counts(p99 bool) stormCounts {
	if c := s.c.Load(); c != nil {
		return (*c).counts(p99)
	}
	return stormCounts{}
}

// statsArgs are the arguments of a child's "stats": "p99" to have the
// p99 of its deliveries since the last such question.
func statsArgs(p99 bool) string {
	if p99 {
		return "p99"
	}
	return ""
}
