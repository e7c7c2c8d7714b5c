package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pulse-go/pulse/internal/fleet"
)

// A fan-out's subscribers run in this process while they and the
// publishers fit in its files; beyond, in children (see bench_fleet.go),
// each with its share and its own source address 127.0.0.K, while the
// publishers stay here. A child answers "stats" (with "p99", the p99 of
// its deliveries since the last such question) with a fanTotals;
// "acked FROM N1 N2 ..." sets the offsets acknowledged to the publishers
// in rooms FROM, FROM+1, ...; "tail" with its subscribers' publications
// acknowledged and not received; when its input ends it closes its
// subscribers and writes a fanShare.

// fanoutJob is a child's share of a fan-out: subscribers First to
// First+N-1, Room a room.
type fanoutJob struct {
	Rooms []string `json:"rooms"`
	First int      `json:"first"`
	N     int      `json:"n"`
	Room  int      `json:"room"`
}

// fanTotals is what the subscribers counted so far.
type fanTotals struct {
	Open     int64   `json:"open"`
	Opened   int64   `json:"opened"`
	Dropped  int64   `json:"dropped"`
	Delivers int64   `json:"delivers"`
	Lost     int64   `json:"lost"`
	Dups     int64   `json:"dups"`
	P99      float64 `json:"p99,omitempty"`
	Err      string  `json:"error,omitempty"` // the ramp's
}

func (t *fanTotals) plus(o fanTotals) {
	t.Open, t.Opened, t.Dropped = t.Open+o.Open, t.Opened+o.Opened, t.Dropped+o.Dropped
	t.Delivers, t.Lost, t.Dups = t.Delivers+o.Delivers, t.Lost+o.Lost, t.Dups+o.Dups
	t.P99 = max(t.P99, o.P99)
	if t.Err == "" {
		t.Err = o.Err
	}
}

// fanShare is a child's final word: its totals and latencies.
type fanShare struct {
	Totals fanTotals `json:"totals"`
	Lat    *histData `json:"latency"`
}

// fanSubscribers are a fan-out's subscribers, here or in children.
type fanSubscribers interface {
	totals(p99 bool) fanTotals
	// tailLost counts the publications acknowledged to f's publishers
	// that a subscriber has not received.
	tailLost() int64
	// close closes them; their latencies are in f.lat.all from here, and
	// totals gives their final counts. It may be called again.
	close() error
}

// localSubs are the subscribers of this process.
type localSubs struct {
	f    *fanout
	subs *group
}

func (l *localSubs) totals(p99 bool) fanTotals {
	t := fanTotals{Open: l.subs.cnt.open.Load(), Opened: l.subs.cnt.opened.Load(), Dropped: l.subs.cnt.dropped.Load(),
		Delivers: l.f.delivers.Load(), Lost: l.f.lost.Load(), Dups: l.f.dups.Load()}
	if p99 {
		t.P99 = l.f.lat.p99()
	}
	return t
}

func (l *localSubs) tailLost() int64 { return l.f.tailLost() }

func (l *localSubs) close() error {
	l.subs.close()
	return nil
}

// fleetSubs are the subscribers of the children; mu keeps one question
// at a time on each child's line protocol.
type fleetSubs struct {
	f        *fanout
	mu       sync.Mutex
	children []*child
	done     bool
	final    fanTotals // once done
}

// startFanSubscribers dials and subscribes every subscriber: here, or in
// children when they do not fit beside the publishers.
func (b *bench) startFanSubscribers(ctx, life context.Context, f *fanout, d *benchDialer) (fanSubscribers, error) {
	per := max(b.cfg.perProcess-b.cfg.publishers, 1)
	if b.cfg.subscribers <= per {
		l := &localSubs{f: f, subs: newGroup()}
		return l, f.subscribeAll(ctx, d, l.subs, 0, b.cfg.room, b.cfg.concurrency)
	}
	k := (b.cfg.subscribers + per - 1) / per
	fs := &fleetSubs{f: f}
	n := b.cfg.subscribers
	var err error
	fs.children, err = startChildren(life, k, func(i int) holdJob {
		job := b.childJob(ctx, i, k)
		job.Fanout = &fanoutJob{Rooms: f.rooms, First: n * i / k, N: n*(i+1)/k - n*i/k, Room: b.cfg.room}
		return job
	})
	if err != nil {
		fs.close()
		return nil, err
	}
	return fs, fs.ready()
}

// ready waits for every child's subscriptions.
func (fs *fleetSubs) ready() error {
	if err := awaitReady(fs.children); err != nil {
		return err
	}
	if t := fs.totals(false); t.Err != "" {
		return errors.New(t.Err)
	}
	return nil
}

func (fs *fleetSubs) totals(p99 bool) fanTotals {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.done {
		return fs.final
	}
	var sum fanTotals
	for _, c := range fs.children {
		var t fanTotals
		if err := c.ask("stats", statsArgs(p99), &t); err != nil {
			t.Err = err.Error()
		}
		sum.plus(t)
	}
	return sum
}

// tailLost tells each child the acknowledged offsets, then asks.
func (fs *fleetSubs) tailLost() int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	acked := make([]string, len(fs.f.acked))
	for i := range fs.f.acked {
		acked[i] = strconv.FormatInt(fs.f.acked[i].Load(), 10)
	}
	var n int64
	for _, c := range fs.children {
		if fs.done {
			break
		}
		for from := 0; from < len(acked); from += 2000 { // lines of some 20 KB
			fmt.Fprintf(c.in, "acked %d %s\n", from, strings.Join(acked[from:min(from+2000, len(acked))], " "))
			c.next("acked")
		}
		var k int64
		c.ask("tail", "", &k)
		n += k
	}
	return n
}

// close stops the children, all at once, and merges their latencies.
func (fs *fleetSubs) close() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.done {
		return nil
	}
	fs.done = true
	errs := make([]error, len(fs.children))
	shares := make([]fanShare, len(fs.children))
	var wg sync.WaitGroup
	for i, c := range fs.children {
		wg.Go(func() {
			line, err := c.stopLine()
			if err == nil {
				err = json.Unmarshal([]byte(line), &shares[i])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, sh := range shares {
		fs.final.plus(sh.Totals)
		if sh.Lat != nil {
			fs.f.lat.all.merge(sh.Lat)
		}
	}
	return errors.Join(errs...)
}

// fanoutWorker is a child's side of a fan-out: its share of the
// subscribers, until its input ends.
func fanoutWorker(ctx context.Context, job holdJob, in io.Reader, out io.Writer) error {
	fj := job.Fanout
	f := fanoutOf(fj.Rooms, fj.N)
	d := &benchDialer{url: job.URL}
	if job.Local != "" {
		d.local = &net.TCPAddr{IP: net.ParseIP(job.Local)}
	}
	l := &localSubs{f: f, subs: newGroup()}
	rampCtx, cancel := context.WithDeadline(ctx, job.Deadline)
	rampErr := f.subscribeAll(rampCtx, d, l.subs, fj.First, fj.Room, job.Concurrency)
	cancel()
	var closed atomic.Bool
	answer := func(verb, args string) (string, bool) {
		switch verb {
		case "stats":
			t := fanTotals{}
			if !closed.Load() {
				t = l.totals(args == "p99")
			}
			if rampErr != nil {
				t.Err = rampErr.Error()
			}
			data, _ := json.Marshal(t)
			return string(data), true
		case "acked":
			return f.setAcked(args), true
		case "tail":
			return strconv.FormatInt(f.tailLost(), 10), true
		}
		return "", false
	}
	return fleet.Serve(fleetName, in, out, answer, func() string {
		closed.Store(true)
		l.close()
		t := l.totals(false) // closed: nothing arrives any more
		data, _ := json.Marshal(fanShare{Totals: t, Lat: f.lat.all.data()})
		return string(data)
	})
}

// setAcked reads "FROM N1 N2 ...": the offsets acknowledged in rooms
// FROM, FROM+1, ...
func (f *fanout) setAcked(args string) string {
	fields := strings.Fields(args)
	if len(fields) == 0 {
		return "bad"
	}
	from, err := strconv.Atoi(fields[0])
	for i, v := range fields[1:] {
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err != nil || err2 != nil || from+i >= len(f.acked) || from < 0 {
			return "bad"
		}
		f.acked[from+i].Store(n)
	}
	return "ok"
}
