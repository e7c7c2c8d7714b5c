//go:build unix

package pulse

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/internal/fleet"
)

// Benchmarks of two of the brief's targets, each measured for pulse on
// each engine (std and epoll) and, in the same run, for the baseline: the gorilla chat
// pattern (internal/baseline) with the same Interval and Timeout.
//
//	go test -run '^$' -bench 'IdleMemory|HeartbeatCPU' -benchtime 1x .
//
// The clients run in a child process, this test binary re-executed as
// TestClientFleet, so this process holds only the server and what it
// measures is the server's. Both sides use RFC 6455 ping frames, answered
// by the same fleet.
//
// Each sub-benchmark is one measurement of a few seconds of wall time (the
// heartbeats run on their own clock), not a loop over b.N: run it with
// -benchtime 1x. ns/op is suppressed; the figures are the reported
// metrics. To repeat, run the command again rather than adding -count,
// which repeats each sub-benchmark in a row and so sets pulse and the
// baseline minutes apart on a noisy machine.

// Sizes of the runs: well under the 20,000 open files a process may hold.
const (
	memConns    = 5000
	memInterval = time.Second
	memTimeout  = 5 * time.Second // generous: the machine is shared
	memRounds   = 2               // heartbeat rounds answered before measuring

	cpuConns   = 2000
	cpuTimeout = 5 * time.Second // generous: the machine is shared
	cpuWarmup  = 3               // heartbeat rounds answered before the window opens
)

// cpuRuns are the heartbeat intervals BenchmarkHeartbeatCPU runs at, each
// with a window of several intervals and at least a few seconds.
var cpuRuns = []struct{ interval, window time.Duration }{
	{time.Second, 6 * time.Second},            // 2,000 round trips/s
	{100 * time.Millisecond, 3 * time.Second}, // 20,000 round trips/s
}

// BenchmarkIdleMemory reports the server's memory per idle connection with
// heartbeats on: the growth of HeapInuse+StackInuse, after a forced GC,
// between the server alone and the server holding memConns connections
// that have each answered memRounds heartbeats. The connections carry no
// data; their heartbeats come every second rather than every 25, so the
// memory of the writes in flight is counted, though it is tiny. Kernel
// socket buffers are not counted. B/conn is the target's figure;
// heapB/conn, stackB/conn and goroutines/conn split it; rssB/conn is the
// growth of the process's resident set after returning freed memory to
// the OS, which also counts runtime overhead (and, since the sides run one
// after another in one process, what the runtime kept from a side before).
//
// The sides "+deflate" are pulse with Options.Compression on, which the
// fleet's clients accept (they offer permessage-deflate to every side;
// the others decline it): memory per idle connection must not change.
func BenchmarkIdleMemory(b *testing.B) {
	for _, side := range append(benchSides, deflateSides...) {
		b.Run(side.name, func(b *testing.B) {
			srv := side.start(b, memInterval, memTimeout)
			before := fleet.SelfMemory()
			clients := startFleet(b, srv.url, memConns)
			awaitConns(b, srv, memConns)
			clients.await(memRounds)
			after := fleet.SelfMemory()
			if n := srv.conns(); n != memConns {
				b.Fatalf("%d connections open after the heartbeats, want %d", n, memConns)
			}
			if srv.deflated != nil && srv.deflated() != memConns {
				b.Fatalf("%d of %d connections negotiated compression", srv.deflated(), memConns)
			}
			perConn := func(v, v0 uint64) float64 { return (float64(v) - float64(v0)) / memConns }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(memConns, "conns")
			b.ReportMetric(perConn(after.Heap+after.Stack, before.Heap+before.Stack), "B/conn")
			b.ReportMetric(perConn(after.Heap, before.Heap), "heapB/conn")
			b.ReportMetric(perConn(after.Stack, before.Stack), "stackB/conn")
			b.ReportMetric(perConn(after.Goroutines, before.Goroutines), "goroutines/conn")
			if before.RSS > 0 {
				b.ReportMetric(perConn(after.RSS, before.RSS), "rssB/conn")
			}
		})
	}
}

// BenchmarkHeartbeatCPU reports the server's CPU time per 1,000 heartbeat
// round trips: getrusage user+system time of this process (the server
// only; the clients are a child process) over a window, while cpuConns
// connections each answer a heartbeat every interval, divided by the round
// trips completed in the window (pings the fleet answered). It runs at a
// low and a high rate, since the cost per round trip depends on it.
// Nothing is subtracted: it includes the timing wheel or the tickers,
// starting writers, gorilla's framing, the read path, the syscalls, the
// scheduler and the GC, and for pulse an Observer's counting. cpu% is the
// server's share of one core, fleet-cpu% the clients'; near 200% together
// the two cores are saturated and the figures include the contention.
func BenchmarkHeartbeatCPU(b *testing.B) {
	for _, run := range cpuRuns {
		b.Run("interval="+run.interval.String(), func(b *testing.B) {
			for _, side := range benchSides {
				b.Run(side.name, func(b *testing.B) { benchHeartbeatCPU(b, side.start, run.interval, run.window) })
			}
		})
	}
}

func benchHeartbeatCPU(b *testing.B, start benchStart, interval, window time.Duration) {
	srv := start(b, interval, cpuTimeout)
	clients := startFleet(b, srv.url, cpuConns)
	awaitConns(b, srv, cpuConns)
	clients.await(cpuWarmup)

	user0, sys0 := cpuTime(b)
	fleet0, fleetErr := clients.CPUTime()
	trips0, began := clients.count().pings, time.Now()
	time.Sleep(window) // the heartbeats keep their own time
	user, sys := cpuTime(b)
	fleetCPU, fleetErr1 := clients.CPUTime()
	trips, wall := clients.count().pings-trips0, time.Since(began)
	user, sys, fleetCPU = user-user0, sys-sys0, fleetCPU-fleet0

	if n := srv.conns(); n != cpuConns {
		b.Fatalf("%d connections open after the window, want %d", n, cpuConns)
	}
	if trips == 0 {
		b.Fatal("no heartbeat answered in the window")
	}
	perK := func(d time.Duration) float64 { return d.Seconds() * 1e3 / (float64(trips) / 1e3) }
	percent := func(d time.Duration) float64 { return 100 * d.Seconds() / wall.Seconds() }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(cpuConns, "conns")
	b.ReportMetric(perK(user+sys), "ms/1000rt")
	b.ReportMetric(perK(user), "user-ms/1000rt")
	b.ReportMetric(perK(sys), "sys-ms/1000rt")
	b.ReportMetric(float64(trips)/wall.Seconds(), "rt/s")
	b.ReportMetric(percent(user+sys), "cpu%")
	if fleetErr == nil && fleetErr1 == nil {
		b.ReportMetric(percent(fleetCPU), "fleet-cpu%")
	}
}

// benchServer is one side under measurement, serving on 127.0.0.1.
type benchServer struct {
	url      string
	conns    func() int   // connections open
	pongs    func() int64 // heartbeat answers received so far
	deflated func() int   // connections open with permessage-deflate; nil for a side without
}

// benchStart starts a side's server, which runs until the test ends.
type benchStart func(tb testing.TB, interval, timeout time.Duration) *benchServer

// benchSides are pulse on each engine and the baseline, measured in the
// same run.
var benchSides = func() []benchSide {
	var sides []benchSide
	for _, e := range engines {
		sides = append(sides, benchSide{"pulse-" + e.String(), func(tb testing.TB, interval, timeout time.Duration) *benchServer {
			return startPulseBench(tb, e, interval, timeout)
		}})
	}
	return append(sides, benchSide{"baseline", startBaselineBench})
}()

type benchSide struct {
	name  string
	start benchStart
}

// deflateSides are pulse on each engine with compression on.
var deflateSides = func() []benchSide {
	var sides []benchSide
	for _, e := range engines {
		sides = append(sides, benchSide{"pulse-" + e.String() + "+deflate", func(tb testing.TB, interval, timeout time.Duration) *benchServer {
			return startPulseBenchWith(tb, &Options{Engine: e, Interval: interval, Timeout: timeout, Compression: &CompressionOptions{}})
		}})
	}
	return sides
}()

// startPulseBench runs a pulse Server on engine e, with an Observer
// counting as a production one does, until the test ends.
func startPulseBench(tb testing.TB, e Engine, interval, timeout time.Duration) *benchServer {
	return startPulseBenchWith(tb, &Options{Interval: interval, Timeout: timeout, Engine: e})
}

// startPulseBenchWith is startPulseBench with options o.
func startPulseBenchWith(tb testing.TB, o *Options) *benchServer {
	obs := &countingObserver{}
	o.Observer = obs
	s := newTestServer(tb, o)
	runServer(tb, s)
	url := baseline.Serve(tb, s.Handler(Funcs{}))
	srv := &benchServer{url: url, conns: s.Len, pongs: obs.allPongs}
	if o.Compression != nil {
		srv.deflated = func() int { return countDeflated(s) }
	}
	return srv
}

// countDeflated is how many of s's connections negotiated compression.
func countDeflated(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.deflateMin > 0 {
			n++
		}
	}
	return n
}

// startBaselineBench runs a baseline server until the test ends.
func startBaselineBench(tb testing.TB, interval, timeout time.Duration) *benchServer {
	s := baseline.New(interval, timeout)
	tb.Cleanup(s.Close)
	url := baseline.Serve(tb, s)
	return &benchServer{url: url, conns: s.Len, pongs: s.Pongs}
}

// awaitConns waits until srv holds n connections.
func awaitConns(tb testing.TB, srv *benchServer, n int) {
	tb.Helper()
	awaitBench(tb, fmt.Sprintf("%d connections", n), func() bool { return srv.conns() == n })
}

// awaitPongs waits until srv has received n heartbeat answers in all.
func awaitPongs(tb testing.TB, srv *benchServer, n int64) {
	tb.Helper()
	awaitBench(tb, fmt.Sprintf("%d heartbeat answers", n), func() bool { return srv.pongs() >= n })
}

// awaitBench polls cond, which the servers cannot signal, for up to 30s.
func awaitBench(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		<-ticker.C
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(tb testing.TB) (user, sys time.Duration) {
	user, sys, err := fleet.SelfCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return user, sys
}

// The client fleet: gorilla clients that answer every ping frame, as
// browsers and gorilla's default ping handler do. A benchmark runs it in a
// child process (internal/fleet); TestClientFleet checks it in process.
// The fleet counts the pings it answers: those are the round trips,
// counted the same way for both sides (pulse's own pong counter counts
// only the answers it can match to its last heartbeat).
//
// It is the fleet named "fleet": to "count" it answers "fleet: count TOTAL
// MIN LOST" (pings answered in all, by the client that answered fewest,
// and connections lost); its done line holds the same three numbers.

// fleetEnv, set to "URL N", makes TestClientFleet the child: a fleet of N
// clients of URL that ends when its stdin does.
const fleetEnv = "PULSE_BENCH_FLEET"

// fleetName starts each line of the fleet's protocol.
const fleetName = "fleet"

// fleetCount is what a fleet has seen of the heartbeats.
type fleetCount struct {
	pings    int64 // pings answered in all
	minPings int64 // by the client that answered fewest
	lost     int64 // connections that ended before the fleet stopped
}

func (c fleetCount) String() string { return fmt.Sprintf("%d %d %d", c.pings, c.minPings, c.lost) }

// clientFleet is the benchmark's end of a client fleet.
type clientFleet struct {
	tb testing.TB
	*fleet.Fleet
}

// count asks the fleet for its counts.
func (f *clientFleet) count() fleetCount {
	f.tb.Helper()
	return f.parse(f.Ask("count"))
}

func (f *clientFleet) parse(result string) fleetCount {
	f.tb.Helper()
	var c fleetCount
	if _, err := fmt.Sscanf(result, "%d %d %d", &c.pings, &c.minPings, &c.lost); err != nil {
		f.tb.Fatalf("client fleet counts %q: %v", result, err)
	}
	return c
}

// await waits until every client of the fleet has answered n pings.
func (f *clientFleet) await(n int64) {
	f.tb.Helper()
	awaitBench(f.tb, fmt.Sprintf("every client to answer %d pings", n), func() bool {
		c := f.count()
		if c.lost > 0 {
			f.tb.Fatalf("client fleet lost %d connections", c.lost)
		}
		return c.minPings >= n
	})
}

// stop closes every client and returns the final counts.
func (f *clientFleet) stop() fleetCount {
	f.tb.Helper()
	return f.parse(f.Stop())
}

// startFleet starts a child process with n clients of url and waits until
// all are connected. When the test ends it stops the fleet, failing the
// test if a client lost its connection or answered no heartbeat.
func startFleet(tb testing.TB, url string, n int) *clientFleet {
	tb.Helper()
	f := &clientFleet{tb, fleet.Start(tb, fleet.Child{
		Name: fleetName,
		Test: "TestClientFleet",
		Env:  fmt.Sprintf("%s=%s %d", fleetEnv, url, n),
	})}
	tb.Cleanup(func() { // before the child is waited for
		c := f.stop()
		if c.lost > 0 || c.minPings == 0 {
			tb.Errorf("client fleet: %d connections lost, fewest pings answered by one client %d", c.lost, c.minPings)
		}
	})
	return f
}

// TestClientFleet is the benchmarks' client fleet when fleetEnv is set.
// Otherwise it checks the fleet in process: five clients connect to each
// side's server and answer its heartbeats.
func TestClientFleet(t *testing.T) {
	if spec := os.Getenv(fleetEnv); spec != "" {
		url, count, _ := strings.Cut(spec, " ")
		n, err := strconv.Atoi(count)
		if err != nil {
			t.Fatalf("%s=%q: %v", fleetEnv, spec, err)
		}
		if err := runFleet(url, n, os.Stdin, os.Stdout); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, side := range append(benchSides, deflateSides...) {
		t.Run(side.name, func(t *testing.T) {
			const n, rounds = 5, 3
			srv := side.start(t, 20*time.Millisecond, time.Second)
			// Its cleanup runs before the server stops, even after a failure.
			f := &clientFleet{t, fleet.StartInProcess(t, fleetName, func(in io.Reader, out io.Writer) error {
				return runFleet(srv.url, n, in, out)
			})}
			awaitConns(t, srv, n)
			if srv.deflated != nil && srv.deflated() != n {
				t.Errorf("%d of %d connections negotiated compression", srv.deflated(), n)
			}
			f.await(rounds)
			awaitPongs(t, srv, rounds*n)
			if c := f.stop(); c.lost != 0 || c.minPings < rounds || c.pings < rounds*n {
				t.Errorf("fleet counts %+v, want no loss and every client at %d pings at least", c, rounds)
			}
		})
	}
}

// runFleet connects n clients to url and speaks the fleet's line protocol
// on in and out. It fails if a client cannot connect.
func runFleet(url string, n int, in io.Reader, out io.Writer) error {
	var (
		mu       sync.Mutex
		conns    []*websocket.Conn
		pings    = make([]atomic.Int64, n)
		readers  sync.WaitGroup
		stopping atomic.Bool
		lost     atomic.Int64
	)
	closeAll := func() {
		stopping.Store(true)
		mu.Lock()
		for _, ws := range conns {
			ws.Close()
		}
		mu.Unlock()
		readers.Wait()
	}
	count := func() fleetCount {
		c := fleetCount{minPings: pings[0].Load(), lost: lost.Load()}
		for i := range pings {
			c.pings += pings[i].Load()
			c.minPings = min(c.minPings, pings[i].Load())
		}
		return c
	}
	dialer := *websocket.DefaultDialer
	dialer.EnableCompression = true // a server with Options.Compression accepts it; the others decline
	err := baseline.DialAll(n, func(i int) error {
		ws, resp, err := dialer.Dial(url, nil)
		if err != nil {
			return fmt.Errorf("dial %s: %w", url, err)
		}
		resp.Body.Close()
		ws.SetPingHandler(func(data string) error {
			pings[i].Add(1)
			ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
			return nil // a failed pong shows as a failed read
		})
		mu.Lock()
		conns = append(conns, ws)
		mu.Unlock()
		readers.Go(func() {
			for {
				if _, _, err := ws.NextReader(); err != nil {
					if !stopping.Load() {
						lost.Add(1)
					}
					return
				}
			}
		})
		return nil
	})
	if err != nil {
		closeAll()
		return err
	}
	answer := func(verb, _ string) (string, bool) { return count().String(), verb == "count" }
	stop := func() string {
		closeAll()
		return count().String()
	}
	return fleet.Serve(fleetName, in, out, answer, stop)
}
