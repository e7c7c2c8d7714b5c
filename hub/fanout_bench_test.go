//go:build unix

package hub_test

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/prom"
)

// BenchmarkFanout measures the brief's fan-out target for pulse (a
// pulse.Server with a hub.Hub on the memory broker), once per engine
// (pulse-std, and pulse-epoll on Linux), and, in the same run, for the
// baseline: one room in the gorilla chat pattern (baseline.Fanout).
//
//	go test -run '^$' -bench Fanout -benchtime 1x ./hub/
//
// The subscribers run in a child process, this test binary re-executed as
// TestFanoutFleet running baseline.RunFanoutFleet, so this process holds
// only the server and the publisher, and its CPU is theirs. The publisher
// is hub.Publish for pulse, Fanout.Broadcast for the baseline. Each
// publication carries its send time (wall clock, UnixNano: same machine,
// same clock) and the subscribers record, per delivery, receive time minus
// send time. Both sides deliver the same JSON text message, apart from the
// position that pulse adds: {"type":"message","channel":"room",
// "pos":{...},"data":{"seq":N,"t":T,"pad":"..."}}, 201 bytes for pulse and
// 152 for the baseline. The fleet handles both the same way.
//
// Each sub-benchmark is one measurement of a few seconds of wall time, the
// publishes paced on their own clock, not a loop over b.N: b.N is ignored
// and the run takes as long with any -benchtime, so run it with -benchtime
// 1x. ns/op is suppressed; the figures are the metrics:
//
//	deliveries/s   deliveries received / (last delivery - first publish);
//	               at most the offered rate, subscribers / gap
//	p50-ms p99-ms max-ms               latency of each delivery
//	last-p50-ms last-p99-ms last-max-ms latency of each publication until its
//	               last subscriber had it
//	missed         deliveries that had not arrived 5s after the last publish
//	pub/s          publishes made per second (the offered rate, if the
//	               publisher kept its pace)
//	lag-max-ms     the latest a publish began after its scheduled time,
//	               having waited for the previous publish to return (pulse
//	               delivers inside hub.Publish; the baseline's hub goroutine
//	               takes a broadcast once it has queued the previous one).
//	               Latency counts from the actual send, so a lag hides up to
//	               that much queueing: compare it with the latencies.
//	cpu%, fleet-cpu%  this process's (server and publisher) and the fleet's
//	               share of one core over the window; near 200% together the
//	               two cores are saturated
//
// To repeat, run the command again rather than adding -count, which would
// set the sides minutes apart on a noisy machine.
func BenchmarkFanout(b *testing.B) {
	for _, sc := range fanoutScenarios {
		b.Run(sc.Name, func(b *testing.B) {
			for _, side := range fanoutSides {
				b.Run(side.name, func(b *testing.B) {
					url, publish := side.start(b)
					f := baseline.StartFanoutFleet(b, side.mode, url, sc.Subscribers)
					reportFanout(b, f.Measure(publish, sc, nil))
				})
			}
		})
	}
}

var fanoutScenarios = []baseline.FanoutScenario{
	// A room of 100 at 1,000 publishes/s: 100k deliveries/s for 3s, the
	// target's load.
	{Name: "room=100,gap=1ms", Subscribers: 100, Publishes: 3000, Gap: time.Millisecond},
	// The same room at 100 publishes/s: the latency of the path when the
	// machine is not saturated.
	{Name: "room=100,gap=10ms", Subscribers: 100, Publishes: 300, Gap: 10 * time.Millisecond},
	// One broadcast to 10,000, 20 times 100ms apart: 100k deliveries/s if
	// each broadcast is done before the next. 10,000 sockets here and
	// 10,000 in the fleet, under the 20,000 open files of a process.
	{Name: "broadcast=10000,gap=100ms", Subscribers: 10000, Publishes: 20, Gap: 100 * time.Millisecond},
	// The same broadcasts 500ms apart: each one's latency, without the
	// queue that the previous ones leave.
	{Name: "broadcast=10000,gap=500ms", Subscribers: 10000, Publishes: 10, Gap: 500 * time.Millisecond},
}

// fanoutChannel is the channel (the room) every subscriber joins.
const fanoutChannel = baseline.FleetChannel

// fanoutSide is one server under measurement: start serves it on
// 127.0.0.1 until the test ends and returns its WebSocket URL and its
// publish, which sends one publication's data to every subscriber.
type fanoutSide struct {
	name  string
	mode  string // how the fleet speaks to it: baseline.FleetPulse or FleetPlain
	start func(tb testing.TB) (url string, publish func(data []byte))
}

// fanoutSides is pulse on each engine this system has ("pulse-std",
// "pulse-epoll" on Linux), then the baseline.
var fanoutSides = append(pulseFanoutSides(), fanoutSide{"baseline", baseline.FleetPlain, startBaselineFanout})

// pulseFanoutSides is one side per pulse engine available here: EngineEpoll
// only on Linux, where NewServer accepts it.
func pulseFanoutSides() []fanoutSide {
	engines := []pulse.Engine{pulse.EngineStd}
	if runtime.GOOS == "linux" {
		engines = append(engines, pulse.EngineEpoll)
	}
	sides := make([]fanoutSide, 0, len(engines))
	for _, e := range engines {
		sides = append(sides, fanoutSide{"pulse-" + e.String(), baseline.FleetPulse, func(tb testing.TB) (string, func([]byte)) {
			return startPulseFanout(tb, e)
		}})
	}
	return sides
}

// startPulseFanout runs a pulse Server on engine with a Hub on the memory
// broker, metrics on as in production and the default liveness rule.
func startPulseFanout(tb testing.TB, engine pulse.Engine) (string, func([]byte)) {
	_, h, url := startBenchHub(tb, engine, 0, 0)
	return url, func(data []byte) {
		if _, err := h.Publish(context.Background(), fanoutChannel, data, hub.PublishOptions{}); err != nil {
			tb.Fatal(err)
		}
	}
}

// startBaselineFanout runs a baseline room with pulse's default Interval
// and Timeout. Its publish wraps data as pulse's message does, without the
// position.
func startBaselineFanout(tb testing.TB) (string, func([]byte)) {
	f := baseline.NewFanout(pulse.DefaultInterval, pulse.DefaultTimeout)
	baseline.RunUntilCleanup(tb, func(ctx context.Context) error {
		f.Run(ctx)
		return nil
	})
	url := baseline.Serve(tb, f)
	prefix := []byte(`{"type":"message","channel":"` + fanoutChannel + `","data":`)
	return url, func(data []byte) {
		msg := append(append(append(make([]byte, 0, len(prefix)+len(data)+1), prefix...), data...), '}')
		f.Broadcast(msg)
	}
}

// reportFanout adds to the common metrics the room's size, the latencies
// of each publication's last delivery, and the publisher's lag.
func reportFanout(b *testing.B, r baseline.FanoutResult) {
	r.Report(b)
	b.ReportMetric(float64(r.Scenario.Subscribers), "subs")
	b.ReportMetric(baseline.Millis(r.LastP50), "last-p50-ms")
	b.ReportMetric(baseline.Millis(r.LastP99), "last-p99-ms")
	b.ReportMetric(baseline.Millis(r.LastMax), "last-max-ms")
	b.ReportMetric(baseline.Millis(int64(r.Lag)), "lag-max-ms")
}

// TestFanoutFleet is BenchmarkFanout's fleet when baseline.FanoutFleetEnv
// is set. Otherwise it checks the measurement in process, for each side: three
// subscribers get five publications each, and the summary counts them.
func TestFanoutFleet(t *testing.T) {
	if baseline.FanoutFleetChild(t) {
		return
	}
	sc := baseline.FanoutScenario{Name: "check", Subscribers: 3, Publishes: 5, Gap: time.Millisecond}
	for _, side := range fanoutSides {
		t.Run(side.name, func(t *testing.T) {
			url, publish := side.start(t)
			f := baseline.StartFanoutFleetInProcess(t, side.mode, url, sc.Subscribers)
			r := f.Measure(publish, sc, nil)
			if r.Deliveries != 15 || r.Complete != 5 || r.Lost != 0 {
				t.Errorf("summary %+v, want 15 deliveries, 5 publications complete, none lost", r.FanoutSummary)
			}
			if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.LastMax != r.Max || r.LastRecv < r.Began.UnixNano() {
				t.Errorf("summary %+v: latencies out of order", r.FanoutSummary)
			}
		})
	}
}

// startBenchHub runs a pulse Server on engine, with the liveness rule of
// interval and timeout (zero: the defaults), and a Hub on the memory
// broker behind it, metrics on as in production, until the benchmark
// ends; it returns them and the Hub's ws:// URL.
func startBenchHub(tb testing.TB, engine pulse.Engine, interval, timeout time.Duration) (*pulse.Server, *hub.Hub, string) {
	discard := slog.New(slog.DiscardHandler)
	srv, err := pulse.NewServer(&pulse.Options{
		Interval:    interval,
		Timeout:     timeout,
		Logger:      discard,
		Observer:    prom.New(prometheus.NewRegistry()),
		DrainWindow: 100 * time.Millisecond,
		Engine:      engine,
	})
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(&hub.Options{Logger: discard})
	baseline.RunUntilCleanup(tb, srv.Run)
	return srv, h, baseline.Serve(tb, srv.Handler(h))
}
