package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// What a run watches while it runs: its own timeline, the server's
// process (--pid) and the server's metrics.

// window is a latency histogram of the whole run beside one of the current
// timeline interval, for the p99 over time.
type window struct {
	all *hist
	cur atomic.Pointer[hist]
}

func newWindow() *window {
	w := &window{all: newHist()}
	w.cur.Store(newHist())
	return w
}

func (w *window) add(d time.Duration) {
	w.all.add(d)
	w.cur.Load().add(d)
}

// p99 returns the p99 of the interval since the last call and starts a new one.
func (w *window) p99() float64 {
	return ms(w.cur.Swap(newHist()).quantile(0.99))
}

// watcher samples a run every tick for the timeline and the progress line.
type watcher struct {
	start   time.Time
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
	mu      sync.Mutex // guards samples
	samples []sample
}

// tick is the timeline's step: about 20 points over the run, 1 s at most.
func (b *bench) tick() time.Duration {
	return min(time.Second, max(b.cfg.duration/20, 50*time.Millisecond))
}

// watch calls probe every tick until stop, and shows each sample on the
// progress line; what names the count of the rate.
func (b *bench) watch(what string, probe func() sample) *watcher {
	w := &watcher{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(b.tick())
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				s := probe()
				s.T = time.Since(w.start).Seconds()
				w.mu.Lock()
				w.samples = append(w.samples, s)
				w.mu.Unlock()
				b.progress.show("%5.1fs  open %d  %s %.0f/s  errors %d  p99 %.2f ms", s.T, s.Open, what, s.Rate, s.Errs, s.P99)
			}
		}
	}()
	return w
}

// end stops the watcher and returns the timeline; it may be called again.
func (w *watcher) end() []sample {
	w.stopped.Do(func() { close(w.stop) })
	<-w.done
	return w.samples
}

// rate turns a growing count into a per-second rate between calls.
type rate struct {
	last  int64
	lastT time.Time
}

func (r *rate) per(count int64) float64 {
	now := time.Now()
	var v float64
	if !r.lastT.IsZero() {
		v = float64(count-r.last) / now.Sub(r.lastT).Seconds()
	}
	r.last, r.lastT = count, now
	return v
}

// procSample is the server's resident memory and CPU time at one moment.
type procSample struct {
	rss int64 // bytes
	cpu time.Duration
}

// readProc reads process pid's RSS and CPU time from /proc (Linux).
func readProc(pid int) (procSample, error) {
	var p procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			p.rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	_, after, _ := strings.Cut(string(stat), ") ") // the command may hold spaces
	fields := strings.Fields(after)                // from field 3, state
	if len(fields) < 13 {
		return p, fmt.Errorf("short /proc/%d/stat", pid)
	}
	user, err1 := strconv.ParseInt(fields[11], 10, 64)
	sys, err2 := strconv.ParseInt(fields[12], 10, 64)
	const userHZ = 100 // clock ticks per second of /proc on Linux
	p.cpu = time.Duration(user+sys) * time.Second / userHZ
	return p, errors.Join(err1, err2)
}

// proc reads the server's process when --pid is given; ok false otherwise.
func (b *bench) proc() (procSample, bool) {
	if b.cfg.pid == 0 {
		return procSample{}, false
	}
	p, err := readProc(b.cfg.pid)
	if err != nil {
		fmt.Fprintf(b.stderr, "bench: --pid %d: %v\n", b.cfg.pid, err)
		return p, false
	}
	return p, true
}

// metricsURL is --metrics, or /metrics on the target's host; explicit
// tells whether the user named it.
func (b *bench) metricsURL() (u string, explicit bool) {
	if b.cfg.metricsURL != "" {
		return b.cfg.metricsURL, true
	}
	t, err := url.Parse(b.cfg.url)
	if err != nil {
		return "", false
	}
	scheme := "http"
	if t.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + t.Host + "/metrics", false
}

// scrape fetches the server's metrics, summed by name over their labels.
// A server without them gives nil, unless --metrics named them.
func (b *bench) scrape(ctx context.Context) (map[string]float64, error) {
	u, explicit := b.metricsURL()
	if u == "" || b.noMetrics {
		return nil, nil
	}
	m, err := scrapeMetrics(ctx, u)
	if err != nil && explicit {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	if _, pulse := m["pulse_connections"]; err != nil || !pulse {
		return nil, nil // not pulse's metrics
	}
	return m, nil
}

// scrapeMetrics GETs a Prometheus text page and sums each metric's samples.
func scrapeMetrics(ctx context.Context, u string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			m[name] += v
		}
	}
	return m, sc.Err()
}

// serverFigures keeps the metrics a result shows: pulse_* ones, and the
// change during the run of the counters. A counter that went back was
// started again by a restarted server; with before nil (the caller
// restarted it) every counter is shown since the restart.
func serverFigures(before, after map[string]float64) map[string]float64 {
	if after == nil {
		return nil
	}
	out := make(map[string]float64)
	for name, v := range after {
		counter := strings.HasPrefix(name, "pulse_") && strings.HasSuffix(name, "_total")
		switch {
		case name == "pulse_connections":
			out[name] = v
		case counter && (before == nil || v < before[name]):
			out[name+" (since the server restarted)"] = v
		case counter:
			out[name+" (this run)"] = v - before[name]
		}
	}
	return out
}

// admissionSampler reads the server's pulse_upgrades_admitted_total
// every second and keeps the highest count between two readings per
// second of the time between them. Each reading is taken by the server
// somewhere between the request and its answer, so the time between two
// is taken at its longest (from the first's request to the second's
// answer), and a second at least: the figure may fall short of the true
// peak but never exceeds it, so a correct admission control never shows
// more than its rate and burst. A server that restarted (its
// process_start_time_seconds changed) counts from zero since its start.
type admissionSampler struct {
	stop    context.CancelFunc
	done    chan struct{}
	highest float64 // -1 until a count; owned by the sampling goroutine until done
}

// sampleAdmissions starts sampling until end is called or ctx ends.
func (b *bench) sampleAdmissions(ctx context.Context) *admissionSampler {
	ctx, cancel := context.WithCancel(ctx)
	a := &admissionSampler{stop: cancel, done: make(chan struct{}), highest: -1}
	go func() {
		defer close(a.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last admissionReading
		for {
			a.read(b, ctx, &last)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return a
}

// admissionReading is one reading of the server's count.
type admissionReading struct {
	v       float64
	started float64   // the server's process_start_time_seconds
	asked   time.Time // zero: none yet
}

// read takes one reading and updates highest.
func (a *admissionSampler) read(b *bench, ctx context.Context, last *admissionReading) {
	asked := time.Now()
	m, _ := b.scrape(ctx)
	v, ok := m["pulse_upgrades_admitted_total"]
	answered := time.Now()
	if !ok {
		return
	}
	r := admissionReading{v: v, started: m["process_start_time_seconds"], asked: asked}
	if !last.asked.IsZero() && r.started > 0 {
		since, n := last.asked, v-last.v
		if r.started != last.started { // a new server: everything since its start
			since, n = time.Unix(0, int64(r.started*1e9)), v
		}
		a.highest = max(a.highest, n/max(answered.Sub(since).Seconds(), 1))
	}
	*last = r
}

// end stops the sampling and returns the highest admitted per second, or
// -1 if the server did not say.
func (a *admissionSampler) end() float64 {
	a.stop()
	<-a.done
	return a.highest
}
