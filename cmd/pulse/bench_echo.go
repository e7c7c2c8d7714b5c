package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runUpgrades is "pulse bench upgrades": --concurrency dialers open a
// connection (for pulse.v1, until its welcome), close it, and start again,
// until --duration ends.
func runUpgrades(ctx context.Context, b *bench) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	d := &benchDialer{url: b.cfg.url, raw: b.cfg.raw}
	lat := newWindow()
	var done, failed atomic.Int64
	var first atomic.Pointer[error]
	var r rate
	w := b.watch("upgrades", func() sample {
		return sample{Rate: r.per(done.Load()), P99: lat.p99(), Errs: failed.Load()}
	})
	start := time.Now()
	var wg sync.WaitGroup
	for range b.cfg.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				c, err := d.dial(ctx, 10*time.Second)
				if err != nil {
					if !ended(ctx) {
						failed.Add(1)
						first.CompareAndSwap(nil, &err)
						if done.Load() == 0 {
							cancel() // nothing works: say so once
						}
					}
					continue
				}
				lat.add(time.Since(t))
				done.Add(1)
				c.close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	timeline := w.end()
	if e := first.Load(); e != nil {
		if done.Load() == 0 {
			return nil, *e
		}
		fmt.Fprintf(b.stderr, "bench: %d upgrades failed; the first: %v\n", failed.Load(), *e)
	}
	after, _ := b.scrape(context.WithoutCancel(ctx))
	res := &benchResult{Timeline: timeline, Server: serverFigures(before, after),
		Latency: map[string]*latencyStats{"handshake": lat.all.stats()}}
	res.add("upgrades", float64(done.Load()), "")
	res.add("upgrades/s", float64(done.Load())/elapsed.Seconds(), "/s")
	res.add("failures", float64(failed.Load()), "")
	return res, nil
}

// runLatency is "pulse bench latency": --n background connections send
// --rate messages per second in all, while probes measure the round trip
// of one message at a time: for pulse.v1 an app ping answered by a pong,
// in raw mode a message an echo endpoint sends back.
func runLatency(ctx context.Context, b *bench) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	d := &benchDialer{url: b.cfg.url, raw: b.cfg.raw}
	probes, gap := latencyProbes(b.cfg.raw && !b.cfg.pacedProbes)
	var pcs []*benchConn
	closeProbes := func() {
		for _, c := range pcs {
			c.close()
		}
	}
	for range probes {
		c, err := d.dial(ctx, 10*time.Second)
		if err != nil {
			closeProbes()
			return nil, err
		}
		pcs = append(pcs, c)
	}
	bg := newGroup()
	if err := bg.dialAll(ctx, d, b.cfg.n, b.cfg.concurrency, nil); err != nil {
		closeProbes()
		return nil, err
	}
	lat := newWindow()
	var sent atomic.Int64
	var r rate
	w := b.watch("round trips", func() sample {
		return sample{Open: bg.cnt.open.Load() + int64(probes), Rate: r.per(lat.all.count()), P99: lat.p99(), Errs: bg.cnt.dropped.Load()}
	})
	var loads sync.WaitGroup
	loadStart := time.Now()
	loads.Go(func() { b.backgroundLoad(ctx, bg, &sent) })
	err = b.probeAll(ctx, pcs, gap, lat)
	cancel()
	loads.Wait()
	loadTime := time.Since(loadStart)
	timeline := w.end()
	after, _ := b.scrape(context.WithoutCancel(ctx))
	bg.close()
	if err != nil {
		return nil, err
	}
	res := &benchResult{Timeline: timeline, Server: serverFigures(before, after),
		Latency: map[string]*latencyStats{"round trip": lat.all.stats()}}
	res.add("round trips", float64(lat.all.count()), "")
	res.add("probe connections", float64(probes), "")
	res.add("background connections", float64(bg.cnt.opened.Load()), "")
	res.add("background messages sent", float64(sent.Load()), "")
	res.add("background messages/s", float64(sent.Load())/loadTime.Seconds(), "/s")
	return res, nil
}

// latencyProbes is how many probe connections measure, and the least time
// between two sends on one. A pulse server closes a connection that pings
// more than 50 times a second (pulse serve --max-ping-rate), so pulse.v1
// probes ping maxAppPings times a second each, four of them; an echo endpoint takes
// messages back to back, unless it is the baseline of a pulse.v1 run,
// which probes the same way.
func latencyProbes(backToBack bool) (int, time.Duration) {
	if backToBack {
		return 1, 0
	}
	return 4, time.Second / maxAppPings
}

// probeAll runs a probe loop on each of conns, which close them.
func (b *bench) probeAll(ctx context.Context, conns []*benchConn, gap time.Duration, lat *window) error {
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { errs[i] = b.probeLoop(ctx, c, gap, lat) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// probeMessage is what the probe sends: an app ping for pulse.v1, a
// numbered text for an echo endpoint.
func probeMessage(raw bool, i int) []byte {
	if !raw {
		return appPing
	}
	return []byte("probe " + strconv.Itoa(i))
}

// probeLoop sends one message at a time on c, gap apart at least, and
// waits for its answer, until ctx ends; then it closes c.
func (b *bench) probeLoop(ctx context.Context, c *benchConn, gap time.Duration, lat *window) error {
	answers := make(chan []byte, 1)
	var readers sync.WaitGroup
	cnt := &counters{}
	readers.Go(func() {
		c.read(cnt, func(data []byte, _ time.Time) {
			select {
			case answers <- data:
			default:
			}
		})
		close(answers)
	})
	defer func() { c.close(); readers.Wait() }()
	for i := 0; ctx.Err() == nil; i++ {
		if i > 0 && gap > 0 {
			sleepCtx(ctx, gap) // under the server's ping limit
		}
		msg, t := probeMessage(b.cfg.raw, i), time.Now()
		if err := c.write(msg); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		if err := awaitAnswer(ctx, answers, b.cfg.raw, msg); err != nil {
			return err
		}
		lat.add(time.Since(t))
	}
	return nil
}

// awaitAnswer waits for the answer to msg: the pong, or the echo of msg.
func awaitAnswer(ctx context.Context, answers <-chan []byte, raw bool, msg []byte) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case data, ok := <-answers:
			if !ok {
				return fmt.Errorf("probe: the server closed the connection")
			}
			if (!raw && bytes.Equal(data, appPong)) || (raw && bytes.Equal(data, msg)) {
				return nil
			}
		case <-ctx.Done():
			return nil
		case <-timeout.C:
			return fmt.Errorf("probe: no answer within 10s; for a plain WebSocket the URL must be an echo endpoint")
		}
	}
}

// backgroundLoad sends --rate messages per second in all, round robin
// over the background connections, until ctx ends.
func (b *bench) backgroundLoad(ctx context.Context, g *group, sent *atomic.Int64) {
	g.mu.Lock()
	conns := append([]*benchConn(nil), g.conns...)
	g.mu.Unlock()
	if len(conns) == 0 {
		return
	}
	msg := probeMessage(b.cfg.raw, -1)
	pace(ctx, b.cfg.rate, func(i int64) {
		if conns[i%int64(len(conns))].write(msg) == nil {
			sent.Add(1)
		}
	})
}

// pace calls f(0), f(1)... at rate per second until ctx ends, catching up
// in bursts when it falls behind.
func pace(ctx context.Context, rate float64, f func(i int64)) {
	start := time.Now()
	tick := time.NewTicker(max(time.Duration(float64(time.Second)/rate), time.Millisecond))
	defer tick.Stop()
	var i int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * rate)
		for ; i < due && ctx.Err() == nil; i++ {
			f(i)
		}
	}
}
