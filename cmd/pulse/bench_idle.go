package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// holder holds the idle connections: a group in this process, or children
// when they are more than one process may hold.
type holder struct {
	group    *group   // in process, or nil
	children []*child // or these
}

// startHolder dials n connections to the target and returns once they are
// dialled (or ctx ended); err is the first dial error when none worked.
// Children live until life ends or close stops them.
func (b *bench) startHolder(life, ctx context.Context, n int) (*holder, error) {
	h := &holder{}
	if n <= b.cfg.perProcess {
		h.group = newGroup()
		d := &benchDialer{url: b.cfg.url, raw: b.cfg.raw}
		return h, h.group.dialAll(ctx, d, n, b.cfg.concurrency, nil)
	}
	deadline, _ := ctx.Deadline()
	k := (n + b.cfg.perProcess - 1) / b.cfg.perProcess
	for i := range k {
		share := n/k + btoi(i < n%k)
		job := holdJob{URL: b.cfg.url, Raw: b.cfg.raw, N: share, Concurrency: max(b.cfg.concurrency/k, 1),
			Local: sourceIP(b.cfg.url, i), Deadline: deadline}
		c, err := startChild(life, job)
		if err != nil {
			h.close()
			return nil, err
		}
		h.children = append(h.children, c)
	}
	return h, h.ready()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ready waits for every child's ramp.
func (h *holder) ready() error {
	errs := make([]error, len(h.children))
	var wg sync.WaitGroup
	for i, c := range h.children {
		wg.Go(func() {
			_, errs[i] = c.next("ready")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("children: %w", err)
	}
	s := h.stats()
	if s.Opened == 0 && s.Err != "" {
		return errors.New(s.Err)
	}
	return nil
}

// stats adds up what the holder counted so far.
func (h *holder) stats() holdStats {
	if h.group != nil {
		return h.group.stats()
	}
	var sum holdStats
	for _, c := range h.children {
		s, err := c.stats()
		if err != nil && sum.Err == "" {
			sum.Err = err.Error()
		}
		sum.plus(s)
	}
	return sum
}

// close closes every connection and returns the final figures.
func (h *holder) close() (holdStats, error) {
	if h.group != nil {
		s := h.group.stats()
		h.group.close()
		return s, nil
	}
	var sum holdStats
	var errs []error
	for _, c := range h.children {
		s, err := c.stop()
		errs = append(errs, err)
		sum.plus(s)
	}
	return sum, errors.Join(errs...)
}

// runIdle is "pulse bench idle": dial N, hold them until --duration ends,
// answering every heartbeat.
func runIdle(ctx context.Context, b *bench) (*benchResult, error) {
	life := ctx
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	p0, hasProc := b.proc()
	var h *holder
	var mu sync.Mutex // guards h for the watcher
	var hb rate
	w := b.watch("heartbeats", func() sample {
		mu.Lock()
		defer mu.Unlock()
		if h == nil {
			return sample{}
		}
		s := h.stats()
		return sample{Open: s.Open, Rate: hb.per(s.Heartbeats), Errs: s.Failures + s.Dropped}
	})
	start := time.Now()
	held, err := b.startHolder(life, ctx, b.cfg.n)
	if held == nil {
		w.end()
		return nil, err
	}
	mu.Lock()
	h = held
	mu.Unlock()
	if err != nil {
		w.end()
		h.close()
		return nil, err
	}
	ramp := time.Since(start)
	mu.Lock()
	p1, _ := b.proc()
	s1 := h.stats()
	mu.Unlock()
	<-ctx.Done() // the hold
	mu.Lock()
	p2, _ := b.proc()
	s2 := h.stats()
	mu.Unlock()
	hold := time.Since(start) - ramp
	after, _ := b.scrape(context.WithoutCancel(ctx))
	timeline := w.end()
	final, err := h.close()
	if err != nil {
		fmt.Fprintf(b.stderr, "bench: closing: %v\n", err)
	}
	res := &benchResult{Timeline: timeline, Server: serverFigures(before, after)}
	res.add("connections held", float64(s2.Open), "")
	res.add("dial failures", float64(final.Failures), "")
	res.add("dropped while held", float64(s2.Dropped), "")
	res.add("ramp", ramp.Seconds(), "s")
	res.add("heartbeats answered", float64(s2.Heartbeats), "")
	res.add("heartbeats/s while held", float64(s2.Heartbeats-s1.Heartbeats)/hold.Seconds(), "/s")
	if hasProc && s2.Open > 0 {
		res.add("server RSS at the end", float64(p2.rss)/(1<<20), "MiB")
		res.add("server RSS per connection", float64(p2.rss-p0.rss)/float64(s2.Open)/1024, "KiB")
		if p2.rss < p0.rss {
			fmt.Fprintln(b.stderr, "bench: the server's RSS fell during the run: it held memory from earlier work; start it afresh for a per-connection figure")
		}
		if beats := s2.Heartbeats - s1.Heartbeats; beats > 0 {
			res.add("server CPU per 1,000 heartbeats", ms(p2.cpu-p1.cpu)*1000/float64(beats), "ms")
		}
	}
	return res, nil
}
