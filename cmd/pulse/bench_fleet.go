package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/pulse-go/pulse/internal/fleet"
)

// Connections beyond one process's file limit are held by child
// processes: this binary again, as "pulse bench" with benchWorkerVar set
// in its environment, each with its
// own share and, on loopback, its own source address 127.0.0.K (one
// address has some 28,000 source ports towards one server port). A child
// speaks the line protocol of package internal/fleet under the name
// "bench": its job comes as one JSON line first; it writes "bench: ready"
// once its connections are dialled, answers "stats" with a holdStats in
// JSON, and when its input ends closes them and writes "bench: done"
// with its final holdStats.

const fleetName = "bench"

// benchWorkerVar, set in the environment of "pulse bench", makes it a
// child of another: it reads a holdJob on its input instead of flags.
const benchWorkerVar = "PULSE_BENCH_WORKER"

// holdJob is what one child holds.
type holdJob struct {
	URL         string    `json:"url"`
	Raw         bool      `json:"raw"`
	N           int       `json:"n"`
	Concurrency int       `json:"concurrency"`
	Local       string    `json:"local,omitempty"` // source IP
	Deadline    time.Time `json:"deadline"`        // the ramp gives up then
	// Baseline makes the child serve the baseline instead (see
	// serveBaseline), held to this heartbeat rule.
	Baseline   bool  `json:"baseline,omitempty"`
	IntervalMS int64 `json:"interval_ms,omitempty"`
	TimeoutMS  int64 `json:"timeout_ms,omitempty"`
	// Rooms, with Baseline, makes it serve that many fan-out rooms
	// instead of the chat-pattern echo (see fanoutRooms).
	Rooms int `json:"rooms,omitempty"`
	// Storm makes it run a share of a storm's clients instead (see
	// stormWorker).
	Storm *stormJob `json:"storm,omitempty"`
	// Fanout makes it hold a share of a fan-out's subscribers instead
	// (see fanoutWorker).
	Fanout *fanoutJob `json:"fanout,omitempty"`
}

// holdStats is what a holder counted.
type holdStats struct {
	Open       int64  `json:"open"`
	Opened     int64  `json:"opened"`
	Failures   int64  `json:"failures"`
	Dropped    int64  `json:"dropped"`
	Heartbeats int64  `json:"heartbeats"`
	Err        string `json:"error,omitempty"` // the ramp's first error
}

func (s *holdStats) plus(o holdStats) {
	s.Open += o.Open
	s.Opened += o.Opened
	s.Failures += o.Failures
	s.Dropped += o.Dropped
	s.Heartbeats += o.Heartbeats
	if s.Err == "" {
		s.Err = o.Err
	}
}

func (g *group) stats() holdStats {
	return holdStats{Open: g.cnt.open.Load(), Opened: g.cnt.opened.Load(), Failures: g.cnt.failures.Load(),
		Dropped: g.cnt.dropped.Load(), Heartbeats: g.cnt.heartbeats.Load()}
}

// benchSpawn makes the command of one child; tests run their own binary.
var benchSpawn = func(ctx context.Context) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench")
	cmd.Env = append(os.Environ(), benchWorkerVar+"=1")
	return cmd, nil
}

// benchWorker is the child's side.
func benchWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		return fmt.Errorf("bench worker: read job: %w", err)
	}
	var job holdJob
	if err := json.Unmarshal([]byte(line), &job); err != nil {
		return fmt.Errorf("bench worker: job: %w", err)
	}
	if job.Storm != nil {
		return stormWorker(ctx, job, in, stdout)
	}
	if job.Fanout != nil {
		return fanoutWorker(ctx, job, in, stdout)
	}
	if job.Baseline {
		return serveBaseline(job, func(answer func(string, string) (string, bool), stop func() string) error {
			return fleet.Serve(fleetName, in, stdout, answer, stop)
		})
	}
	d := &benchDialer{url: job.URL, raw: job.Raw}
	if job.Local != "" {
		d.local = &net.TCPAddr{IP: net.ParseIP(job.Local)}
	}
	g := newGroup()
	rampCtx, cancel := context.WithDeadline(ctx, job.Deadline)
	rampErr := g.dialAll(rampCtx, d, job.N, job.Concurrency, nil)
	cancel()
	stats := func() string {
		s := g.stats()
		if rampErr != nil {
			s.Err = rampErr.Error()
		}
		data, _ := json.Marshal(s)
		return string(data)
	}
	answer := func(verb, _ string) (string, bool) { return stats(), verb == "stats" }
	return fleet.Serve(fleetName, in, stdout, answer, func() string { g.close(); return stats() })
}

// child is the parent's end of one worker. Its methods belong to one
// goroutine at a time.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  *bufio.Scanner
	stderr *strings.Builder
}

// startChild starts a worker holding job; ready waits for its ramp.
func startChild(ctx context.Context, job holdJob) (*child, error) {
	cmd, err := benchSpawn(ctx)
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = &limitedWriter{w: c.stderr, n: 4096}
	cmd.WaitDelay = time.Second
	if c.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a child: %w", err)
	}
	c.lines = bufio.NewScanner(out)
	c.lines.Buffer(make([]byte, 64<<10), maxChildLine)
	data, _ := json.Marshal(job)
	fmt.Fprintf(c.in, "%s\n", data)
	return c, nil
}

// childJob is the part of child i's job, of k, that every scenario shares:
// the target, its share of the dialers, its source address, the deadline.
func (b *bench) childJob(ctx context.Context, i, k int) holdJob {
	deadline, _ := ctx.Deadline()
	return holdJob{URL: b.cfg.url, Concurrency: max(b.cfg.concurrency/k, 1), Local: sourceIP(b.cfg.url, i), Deadline: deadline}
}

// startChildren starts k children, child i holding job(i). On an error
// it returns it with the children started so far, for the caller to stop.
func startChildren(life context.Context, k int, job func(i int) holdJob) ([]*child, error) {
	var children []*child
	for i := range k {
		c, err := startChild(life, job(i))
		if err != nil {
			return children, err
		}
		children = append(children, c)
	}
	return children, nil
}

// awaitReady waits for every child's "ready": the end of its ramp.
func awaitReady(children []*child) error {
	errs := make([]error, len(children))
	var wg sync.WaitGroup
	for i, c := range children {
		wg.Go(func() {
			_, errs[i] = c.next("ready")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("children: %w", err)
	}
	return nil
}

// next reads the child's next line of the protocol, which must be verb's,
// and returns its result.
func (c *child) next(verb string) (string, error) {
	for c.lines.Scan() {
		line, ok := strings.CutPrefix(c.lines.Text(), fleetName+": ")
		if !ok {
			continue // the binary's own output
		}
		if rest, ok := strings.CutPrefix(line, verb); ok {
			return strings.TrimSpace(rest), nil
		}
		return "", fmt.Errorf("child said %q, want %s", line, verb)
	}
	return "", fmt.Errorf("child ended: %s", strings.TrimSpace(c.stderr.String()))
}

// stats asks the child what it holds.
func (c *child) stats() (holdStats, error) {
	var s holdStats
	fmt.Fprintln(c.in, "stats")
	line, err := c.next("stats")
	if err == nil {
		err = json.Unmarshal([]byte(line), &s)
	}
	return s, err
}

// stop closes the child's input and returns its final stats once it ended.
func (c *child) stop() (holdStats, error) {
	var s holdStats
	line, err := c.stopLine()
	if err == nil {
		err = json.Unmarshal([]byte(line), &s)
	}
	return s, err
}

// maxChildLine bounds a line of a child: a storm's share of 10,000
// clients, their figures in JSON, takes some 2 MiB.
const maxChildLine = 64 << 20

// stopLine closes the child's input and returns its done line once it
// ended.
func (c *child) stopLine() (string, error) {
	c.in.Close()
	line, err := c.next("done")
	for c.lines.Scan() {
	}
	return line, errors.Join(err, c.cmd.Wait())
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	mu sync.Mutex
	w  io.Writer
	n  int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// sourceIP returns the source address of child k: 127.0.0.(k+2) when the
// target is on loopback, else the system's choice.
func sourceIP(target string, k int) string {
	u, err := url.Parse(target)
	if err != nil || !isLoopbackHost(u.Hostname()) || k > 250 {
		return ""
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.To4() == nil {
		return "" // ::1 is one address only
	}
	return fmt.Sprintf("127.0.0.%d", k+2)
}
