//go:build unix

package redisbroker

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// BenchmarkFanout measures fan-out through Redis with two nodes beside the
// memory broker with one, in the same run:
//
//	go test -run '^$' -bench Fanout -benchtime 1x ./redisbroker/
//
// Side "memory" is one node (a pulse.Server with a hub.Hub on the memory
// broker), publishing with its hub. Side "redis" is two nodes in this
// process, each a hub.Hub on its own Broker to one redis-server: the room's
// subscribers are on node A, the publications are made through node B, so
// every delivery crosses Redis (publish.lua on B's call, PUB/SUB to A, A's
// fan-out). The 100 subscribers are the fan-out fleet of
// internal/baseline in a child process (this test binary again, as
// TestFanoutFleet), as in hub's BenchmarkFanout, whose metrics these are:
// deliveries/s, pub/s, p50-ms/p99-ms/max-ms of each delivery (receive time
// minus the send time the publication carries), missed deliveries, and
// cpu% (this process: both nodes and the publisher), fleet-cpu% and, for
// Redis, redis-cpu% (from INFO cpu). rtt/pub is the Redis round trips the
// nodes' clients made per publication (a command or a pipeline each,
// counted by a go-redis hook; PUB/SUB pushes are not round trips).
//
// The run is paced on its own clock: b.N is ignored; use -benchtime 1x.
// With -v it logs the machine's load average first: on a machine that other
// work keeps busy, latencies say more of the scheduler than of pulse.
func BenchmarkFanout(b *testing.B) {
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
	for _, sc := range fanoutScenarios {
		b.Run(sc.Name, func(b *testing.B) {
			for _, side := range fanoutSides {
				b.Run(side.name, func(b *testing.B) {
					n := side.start(b)
					f := baseline.StartFanoutFleet(b, baseline.FleetPulse, n.url, sc.Subscribers)
					reportFanout(b, measureFanout(f, n, sc))
				})
			}
		})
	}
}

var fanoutScenarios = []baseline.FanoutScenario{
	// The goal: a room of 100 at 500 publishes/s, 50k deliveries/s,
	// for 5s.
	{Name: "room=100,gap=2ms", Subscribers: 100, Publishes: 2500, Gap: 2 * time.Millisecond},
	// The same room at 100 publishes/s: the latency of the path when the
	// machine is not saturated.
	{Name: "room=100,gap=10ms", Subscribers: 100, Publishes: 300, Gap: 10 * time.Millisecond},
}

// fanoutNodes is one side under measurement.
type fanoutNodes struct {
	url        string               // where the subscribers connect
	publish    func(data []byte)    // one publication to the room
	roundTrips func() int64         // Redis round trips so far; nil for memory
	redisCPU   func() time.Duration // Redis's CPU time so far; nil for memory
}

type fanoutSide struct {
	name  string
	start func(tb testing.TB) fanoutNodes
}

var fanoutSides = []fanoutSide{
	{"memory", startMemoryNodes},
	{"redis", startRedisNodes},
}

// startMemoryNodes runs one node on the memory broker.
func startMemoryNodes(tb testing.TB) fanoutNodes {
	h := hub.New(&hub.Options{Logger: slog.New(slog.DiscardHandler)})
	return fanoutNodes{url: serveNode(tb, h), publish: hubPublish(tb, h)}
}

// startRedisNodes runs a redis-server and two nodes on it: A serves the
// subscribers, B publishes.
func startRedisNodes(tb testing.TB) fanoutNodes {
	server := redistest.Start(tb)
	var trips roundTrips
	var nodes [2]*hub.Hub
	for i := range nodes {
		br, err := New(context.Background(), server.URL(), &Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			tb.Fatal(err)
		}
		br.rdb.AddHook(&trips)
		tb.Cleanup(func() { br.Close() })
		nodes[i] = hub.New(&hub.Options{Broker: br, Logger: slog.New(slog.DiscardHandler)})
	}
	admin := redis.NewClient(&redis.Options{Addr: server.Addr(), Protocol: 2})
	tb.Cleanup(func() { admin.Close() })
	return fanoutNodes{
		url:        serveNode(tb, nodes[0]),
		publish:    hubPublish(tb, nodes[1]),
		roundTrips: trips.n.Load,
		redisCPU:   func() time.Duration { return redisCPU(tb, admin) },
	}
}

// serveNode serves h on a pulse.Server with the default liveness rule
// until the test ends, and returns its WebSocket URL.
func serveNode(tb testing.TB, h *hub.Hub) string {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 100 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	baseline.RunUntilCleanup(tb, srv.Run)
	return baseline.Serve(tb, srv.Handler(h))
}

func hubPublish(tb testing.TB, h *hub.Hub) func([]byte) {
	return func(data []byte) {
		if _, err := h.Publish(context.Background(), baseline.FleetChannel, data, hub.PublishOptions{}); err != nil {
			tb.Fatal(err)
		}
	}
}

// roundTrips is a go-redis hook counting round trips: each command sent
// alone, and each pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// redisCPU is the CPU time (user + system) Redis reports in INFO cpu.
func redisCPU(tb testing.TB, admin *redis.Client) time.Duration {
	info, err := admin.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			s, _ := strconv.ParseFloat(v, 64)
			total += s
		}
	}
	return time.Duration(total * float64(time.Second))
}
