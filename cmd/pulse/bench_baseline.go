package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/internal/baseline"
)

// --baseline runs the same scenario, in raw mode, against the gorilla
// chat-pattern server of package internal/baseline (two goroutines and a
// ticker per connection, pings as frames, messages echoed), held to the
// target's heartbeat rule (read from its Pulse-Heartbeat header) and run
// in a child process so that its RSS and CPU time are its own. For
// fanout the child serves one chat hub per room instead (see
// bench_fanraw.go).

// baselineScenarios are those the baseline can serve: it speaks no pulse.v1.
var baselineScenarios = []string{"idle", "upgrades", "latency", "fanout", "storm"}

// runBaseline starts the baseline server and runs the scenario against it.
func runBaseline(ctx context.Context, b *bench) (*benchResult, error) {
	interval, timeout := b.heartbeatRule(ctx)
	start := time.Now()
	job := holdJob{Baseline: true, IntervalMS: interval.Milliseconds(), TimeoutMS: timeout.Milliseconds()}
	if b.cfg.scenario == "fanout" {
		job.Rooms = (b.cfg.subscribers + b.cfg.room - 1) / b.cfg.room
	}
	c, err := startChild(ctx, job)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if _, err := c.next("ready"); err != nil {
		return nil, err
	}
	fmt.Fprintln(c.in, "addr")
	addr, err := c.next("addr")
	if err != nil {
		return nil, err
	}
	cfg := *b.cfg
	cfg.pacedProbes = !b.cfg.raw // the same probes as pulse's run
	cfg.url, cfg.raw, cfg.pid, cfg.metricsURL, cfg.baseline = "ws://"+addr+"/", true, c.cmd.Process.Pid, "", false
	cfg.chaos, cfg.restartCmd = true, "" // a storm's baseline is cut by the proxy
	bb := &bench{cfg: &cfg, progress: b.progress, stderr: b.stderr, noMetrics: true, members: c.members}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration+benchCloseGrace)
	defer cancel()
	res, err := bb.run(ctx)
	if res != nil {
		res.Started = start
	}
	return res, err
}

// heartbeatRule reads the target's interval and timeout from the
// Pulse-Heartbeat header of an upgrade; pulse's defaults if it has none.
func (b *bench) heartbeatRule(ctx context.Context) (interval, timeout time.Duration) {
	interval, timeout = pulse.DefaultInterval, pulse.DefaultTimeout
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	if !b.cfg.raw {
		d.Subprotocols = []string{pulse.Subprotocol}
	}
	ws, resp, err := d.DialContext(ctx, b.cfg.url, nil)
	if err != nil {
		return interval, timeout
	}
	ws.Close()
	for part := range strings.SplitSeq(resp.Header.Get("Pulse-Heartbeat"), ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n <= 0:
		case k == "interval_ms":
			interval = time.Duration(n) * time.Millisecond
		case k == "timeout_ms":
			timeout = time.Duration(n) * time.Millisecond
		}
	}
	return interval, timeout
}

// members asks the child how many subscribers its fan-out rooms hold.
func (c *child) members() (int, error) {
	fmt.Fprintln(c.in, "members")
	line, err := c.next("members")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(line)
}

// serveBaseline is the child's side of --baseline: it serves the
// baseline, or with job.Rooms its fan-out rooms, on a fresh loopback
// port, answers "addr" with it and "members" with the rooms' members,
// and stops when its input ends.
func serveBaseline(job holdJob, run func(answer func(verb, args string) (string, bool), stop func() string) error) error {
	interval, timeout := time.Duration(job.IntervalMS)*time.Millisecond, time.Duration(job.TimeoutMS)*time.Millisecond
	var handler http.Handler
	var closeSrv func()
	members := func() int { return 0 }
	if job.Rooms > 0 {
		fr := newFanoutRooms(job.Rooms, interval, timeout)
		handler, closeSrv, members = fr.handler(), fr.close, fr.members
	} else {
		srv := baseline.New(interval, timeout)
		handler, closeSrv = srv, srv.Close
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeSrv()
		return err
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	answer := func(verb, _ string) (string, bool) {
		if verb == "members" {
			return strconv.Itoa(members()), true
		}
		return ln.Addr().String(), verb == "addr"
	}
	return run(answer, func() string {
		hs.Close()
		<-served
		closeSrv()
		return "{}"
	})
}
