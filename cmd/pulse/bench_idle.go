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
	k := (n + b.cfg.perProcess - 1) / b.cfg.perProcess
	var err error
	h.children, err = startChildren(life, k, func(i int) holdJob {
		job := b.childJob(ctx, i, k)
		job.Raw, job.N = b.cfg.raw, n/k+btoi(i < n%k)
		return job
	})
	if err != nil {
		h.close()
		return nil, err
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
	if err := awaitReady(h.children); err != nil {
		return err
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

// shared is a holder the watcher reads while the run sets it up.
type shared struct {
	mu sync.Mutex // guards h, and a child's line protocol, one question at a time
	h  *holder    // nil until the ramp ends
}

func (s *shared) set(h *holder) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

// stats returns the holder's counts; zero during the ramp.
func (s *shared) stats() holdStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return holdStats{}
	}
	return s.h.stats()
}

// mark reads the server's process and the holder's counts at one moment.
func (s *shared) mark(b *bench) idleMark {
	m := idleMark{at: time.Now()}
	m.proc, m.hasProc = b.proc()
	m.stats = s.stats()
	return m
}

// idleMark is what an idle run reads at one moment.
type idleMark struct {
	at      time.Time
	proc    procSample
	hasProc bool
	stats   holdStats
}

// runIdle is "pulse bench idle": dial N, hold them until --duration ends,
// answering every heartbeat.
func runIdle(ctx context.Context, b *bench) (*benchResult, error) {
	life := ctx // children live until the run's hard limit at most
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	var s shared
	var hb rate
	w := b.watch("heartbeats", func() sample {
		st := s.stats()
		return sample{Open: st.Open, Rate: hb.per(st.Heartbeats), Errs: st.Failures + st.Dropped}
	})
	defer w.end()
	m0 := s.mark(b)
	h, err := b.startHolder(life, ctx, b.cfg.n)
	if err != nil {
		if h != nil {
			h.close()
		}
		return nil, err
	}
	s.set(h)
	if h.group != nil && h.group.firstErr != nil {
		fmt.Fprintf(b.stderr, "bench: %d dials failed; the first: %v\n", h.group.cnt.failures.Load(), h.group.firstErr)
	}
	m1 := s.mark(b) // the ramp's end
	<-ctx.Done()    // the hold
	m2 := s.mark(b)
	after, _ := b.scrape(context.WithoutCancel(ctx))
	res := &benchResult{Timeline: w.end(), Server: serverFigures(before, after)}
	final, err := h.close()
	if err != nil {
		fmt.Fprintf(b.stderr, "bench: closing: %v\n", err)
	}
	b.idleFigures(res, m0, m1, m2, final)
	return res, nil
}

// idleFigures fills res from the marks at the start (m0), the end of the
// ramp (m1) and the end of the hold (m2).
func (b *bench) idleFigures(res *benchResult, m0, m1, m2 idleMark, final holdStats) {
	held, beats := m2.stats.Open, m2.stats.Heartbeats-m1.stats.Heartbeats
	res.add("connections held", float64(held), "")
	res.add("dial failures", float64(final.Failures), "")
	res.add("dropped while held", float64(m2.stats.Dropped), "")
	res.add("ramp", m1.at.Sub(m0.at).Seconds(), "s")
	res.add("heartbeats answered", float64(m2.stats.Heartbeats), "")
	res.add("heartbeats/s while held", float64(beats)/m2.at.Sub(m1.at).Seconds(), "/s")
	if !m0.hasProc || !m2.hasProc || held == 0 {
		return
	}
	res.add("server RSS at the end", float64(m2.proc.rss)/(1<<20), "MiB")
	res.add("server RSS per connection", float64(m2.proc.rss-m0.proc.rss)/float64(held)/1024, "KiB")
	if m2.proc.rss < m0.proc.rss {
		fmt.Fprintln(b.stderr, "bench: the server's RSS fell during the run: it held memory from earlier work; start it afresh for a per-connection figure")
	}
	if beats > 0 {
		res.add("server CPU per 1,000 heartbeats", ms(m2.proc.cpu-m1.proc.cpu)*1000/float64(beats), "ms")
	}
}
