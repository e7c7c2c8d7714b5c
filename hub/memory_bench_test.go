//go:build unix

package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/internal/fleet"
)

// Sizes of BenchmarkSubscribedMemory: 15,000 server sockets here, 7,500
// client sockets in each fleet, under the 20,000 open files of a process.
const (
	subConns  = 15_000
	subRoom   = 100 // clients per channel: 150 channels
	subFleets = 2   // child processes holding the clients
	// subPublishEvery is the gap between two publications to one channel:
	// light traffic, 50 publications and 5,000 deliveries a second in all.
	subPublishEvery = 3 * time.Second
)

// BenchmarkSubscribedMemory reports the server's memory per pulse.v1
// connection subscribed to one channel, heartbeats on with the default
// rule (25 s + 10 s), for pulse on each engine (pulse-std, and pulse-epoll
// on Linux: a pulse.Server with a hub.Hub on the memory broker, metrics on
// as in production) and, in the same run, for the baseline: the gorilla
// chat pattern with one hub per room (baseline.Fanout).
//
//	go test -run '^$' -bench SubscribedMemory -benchtime 1x ./hub/
//
// subConns clients, held by subFleets child processes (this test binary
// re-executed as TestSubscribedFleet) dialling from 127.0.0.10 and up,
// join rooms of subRoom: a pulse client subscribes to its room's channel,
// a baseline client dials its room's hub. Once all are in, a publisher
// sends one publication to each room every subPublishEvery, and the
// measurement waits until every client has answered a heartbeat.
//
// B/conn is the growth of HeapInuse+StackInuse, after a forced GC, from
// before the first dial to then, divided by the connections: the hub's
// sessions, subscriptions and channels included, the kernel's socket
// buffers not. heapB/conn, stackB/conn and goroutines/conn split it;
// rssB/conn is the growth of the resident set after returning freed memory
// to the OS, which also counts the runtime's overhead (and, since the
// sides run one after another in one process, what the runtime kept from
// a side before). A table of the sides follows the run.
//
// Each side is one measurement of about a minute (the heartbeats keep
// their own time), not a loop over b.N: run it with -benchtime 1x. To
// repeat, run the command again rather than adding -count.
func BenchmarkSubscribedMemory(b *testing.B) {
	var rows []string
	for _, side := range subSides {
		b.Run(side.name, func(b *testing.B) {
			rows = append(rows, side.name+"\t"+benchSubscribed(b, side))
		})
	}
	fmt.Printf("\nper subscribed connection, %d in rooms of %d:\nside\theap+stacks\theap\tstacks\tgoroutines\tRSS\n%s\n",
		subConns, subRoom, strings.Join(rows, "\n"))
}

// benchSubscribed measures one side and returns its row of the table.
func benchSubscribed(b *testing.B, side subSide) string {
	rooms := subConns / subRoom
	srv := side.start(b, pulse.DefaultInterval, pulse.DefaultTimeout, rooms)
	before := fleet.SelfMemory()
	fleets := startSubFleets(b, side.mode, srv.url)
	awaitSubBench(b, fmt.Sprintf("%d connections", subConns), func() bool { return srv.conns() == subConns })
	stopPublisher := publishToRooms(srv.publish, rooms, subPublishEvery)
	defer stopPublisher()
	var deliveries int64
	awaitSubBench(b, "every client to answer a heartbeat", func() bool {
		deliveries = 0
		done := true
		for _, f := range fleets {
			c := f.count()
			if c.lost > 0 {
				b.Fatalf("subscribed fleet lost %d connections", c.lost)
			}
			done = done && c.minPings >= 1
			deliveries += c.deliveries
		}
		return done
	})
	after := fleet.SelfMemory()
	if n := srv.conns(); n != subConns {
		b.Fatalf("%d connections open after the heartbeats, want %d", n, subConns)
	}
	return reportSubscribed(b, before, after, deliveries)
}

// reportSubscribed reports the metrics and returns the table's row.
func reportSubscribed(b *testing.B, before, after fleet.Memory, deliveries int64) string {
	per := func(v, v0 uint64) float64 { return (float64(v) - float64(v0)) / subConns }
	total, heap, stack := per(after.Heap+after.Stack, before.Heap+before.Stack), per(after.Heap, before.Heap), per(after.Stack, before.Stack)
	goroutines, rss := per(after.Goroutines, before.Goroutines), per(after.RSS, before.RSS)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(subConns, "conns")
	b.ReportMetric(total, "B/conn")
	b.ReportMetric(heap, "heapB/conn")
	b.ReportMetric(stack, "stackB/conn")
	b.ReportMetric(goroutines, "goroutines/conn")
	b.ReportMetric(rss, "rssB/conn")
	b.ReportMetric(float64(deliveries), "deliveries")
	kib := func(v float64) string { return fmt.Sprintf("%.2f KiB", v/1024) }
	return fmt.Sprintf("%s\t%s\t%s\t%.2f\t%s", kib(total), kib(heap), kib(stack), goroutines, kib(rss))
}

// startSubFleets starts the fleets, each holding its share of the clients
// from two source addresses of its own (on Linux), and waits until all
// are in.
func startSubFleets(tb testing.TB, mode, url string) []*subscribedFleet {
	per := subConns / subFleets
	fleets := make([]*subscribedFleet, subFleets)
	for p := range fleets {
		sources := []string{fmt.Sprintf("127.0.0.%d", 10+2*p), fmt.Sprintf("127.0.0.%d", 11+2*p)}
		if runtime.GOOS != "linux" { // only Linux answers on all of 127/8 by default
			sources = []string{"127.0.0.1"}
		}
		fleets[p] = startSubFleet(tb, subFleetSpec{mode: mode, url: url, first: p * per, n: per, roomSize: subRoom, sources: sources})
	}
	return fleets
}

// publishToRooms publishes to each room in turn, every room once per
// every, until the returned stop is called; stop waits for the publisher.
func publishToRooms(publish func(room int), rooms int, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(every / time.Duration(rooms))
		defer ticker.Stop()
		for room := 0; ; room = (room + 1) % rooms {
			select {
			case <-ticker.C:
				publish(room)
			case <-ctx.Done():
				return
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// subServer is one side's server, on 127.0.0.1.
type subServer struct {
	url     string
	conns   func() int     // connections open
	publish func(room int) // one publication to every client of room
}

// subSide is one side of the benchmark: start serves rooms until the test ends.
type subSide struct {
	name  string
	mode  string // how the fleet speaks to it
	start func(tb testing.TB, interval, timeout time.Duration, rooms int) *subServer
}

// subSides is pulse on each engine this system has, then the baseline.
var subSides = func() []subSide {
	engines := []pulse.Engine{pulse.EngineStd}
	if runtime.GOOS == "linux" {
		engines = append(engines, pulse.EngineEpoll)
	}
	var sides []subSide
	for _, e := range engines {
		sides = append(sides, subSide{"pulse-" + e.String(), baseline.FleetPulse, func(tb testing.TB, interval, timeout time.Duration, _ int) *subServer {
			return startPulseSubscribed(tb, e, interval, timeout)
		}})
	}
	return append(sides, subSide{"baseline", baseline.FleetPlain, startBaselineRooms})
}()

// startPulseSubscribed runs a pulse Server on engine with a Hub on the
// memory broker and metrics on, as in production.
func startPulseSubscribed(tb testing.TB, engine pulse.Engine, interval, timeout time.Duration) *subServer {
	srv, h, url := startBenchHub(tb, engine, interval, timeout)
	seq := 0
	return &subServer{url: url, conns: srv.Len, publish: func(room int) {
		seq++
		if _, err := h.Publish(context.Background(), roomChannel(room), baseline.FanoutPayload(seq), hub.PublishOptions{}); err != nil {
			tb.Error(err)
		}
	}}
}

// startBaselineRooms runs one baseline.Fanout per room, each at its own
// path; a publication is wrapped as pulse's message is, without the
// position.
func startBaselineRooms(tb testing.TB, interval, timeout time.Duration, rooms int) *subServer {
	mux := http.NewServeMux()
	hubs := make([]*baseline.Fanout, rooms)
	for room := range hubs {
		f := baseline.NewFanout(interval, timeout)
		baseline.RunUntilCleanup(tb, func(ctx context.Context) error { f.Run(ctx); return nil })
		mux.Handle("/"+roomPath(room), f)
		hubs[room] = f
	}
	url := baseline.Serve(tb, mux)
	conns := func() int {
		n := 0
		for _, f := range hubs {
			n += f.Len()
		}
		return n
	}
	seq := 0
	return &subServer{url: url, conns: conns, publish: func(room int) {
		seq++
		prefix := `{"type":"message","channel":"` + roomChannel(room) + `","data":`
		hubs[room].Broadcast(append(append([]byte(prefix), baseline.FanoutPayload(seq)...), '}'))
	}}
}

// awaitSubBench polls cond, which the servers cannot signal, for up to
// the liveness rule's bound and a minute more.
func awaitSubBench(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.Now().Add(pulse.DefaultInterval + pulse.DefaultTimeout + time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		<-ticker.C
	}
}
