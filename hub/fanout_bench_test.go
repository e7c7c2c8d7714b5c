//go:build unix

package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/internal/fleet"
	"github.com/pulse-go/pulse/prom"
)

// BenchmarkFanout measures the brief's fan-out target for pulse (a
// pulse.Server with a hub.Hub on the memory broker) and, in the same run,
// for the baseline: one room in the gorilla chat pattern
// (baseline.Fanout).
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
// set pulse and the baseline minutes apart on a noisy machine.
func BenchmarkFanout(b *testing.B) {
	for _, sc := range fanoutScenarios {
		b.Run(sc.name, func(b *testing.B) {
			for _, side := range fanoutSides {
				b.Run(side.name, func(b *testing.B) {
					url, publish := side.start(b)
					f := startFanoutFleet(b, side.mode, url, sc.subscribers)
					reportFanout(b, measureFanout(b, f, publish, sc))
				})
			}
		})
	}
}

// fanoutScenario is one shape of fan-out: publishes made gap apart to one
// channel of subscribers.
type fanoutScenario struct {
	name        string
	subscribers int
	publishes   int
	gap         time.Duration
}

var fanoutScenarios = []fanoutScenario{
	// A room of 100 at 1,000 publishes/s: 100k deliveries/s for 3s, the
	// target's load.
	{"room=100,gap=1ms", 100, 3000, time.Millisecond},
	// The same room at 100 publishes/s: the latency of the path when the
	// machine is not saturated.
	{"room=100,gap=10ms", 100, 300, 10 * time.Millisecond},
	// One broadcast to 10,000, 20 times 100ms apart: 100k deliveries/s if
	// each broadcast is done before the next. 10,000 sockets here and
	// 10,000 in the fleet, under the 20,000 open files of a process.
	{"broadcast=10000,gap=100ms", 10000, 20, 100 * time.Millisecond},
	// The same broadcasts 500ms apart: each one's latency, without the
	// queue that the previous ones leave.
	{"broadcast=10000,gap=500ms", 10000, 10, 500 * time.Millisecond},
}

// fanoutSettle is how long deliveries may still arrive after the last publish.
const fanoutSettle = 5 * time.Second

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

var fanoutSides = []fanoutSide{
	{"pulse", baseline.FleetPulse, startPulseFanout},
	{"baseline", baseline.FleetPlain, startBaselineFanout},
}

// startPulseFanout runs a pulse Server with a Hub on the memory broker,
// metrics on as in production and the default liveness rule.
func startPulseFanout(tb testing.TB) (string, func([]byte)) {
	discard := slog.New(slog.DiscardHandler)
	srv, err := pulse.NewServer(&pulse.Options{
		Logger:      discard,
		Observer:    prom.New(prometheus.NewRegistry()),
		DrainWindow: 100 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(&hub.Options{Logger: discard})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	url := baseline.Serve(tb, srv.Handler(h))
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
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		f.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-ran
	})
	url := baseline.Serve(tb, f)
	prefix := []byte(`{"type":"message","channel":"` + fanoutChannel + `","data":`)
	return url, func(data []byte) {
		msg := append(append(append(make([]byte, 0, len(prefix)+len(data)+1), prefix...), data...), '}')
		f.Broadcast(msg)
	}
}

// fanoutResult is one measurement.
type fanoutResult struct {
	baseline.FanoutSummary
	scenario           fanoutScenario
	began              time.Time     // the first measured publish
	publishing         time.Duration // from the first publish to the last
	lag                time.Duration // the latest a publish began after its time
	window             time.Duration // from the first publish to the end of waiting
	cpu, fleetCPU      time.Duration // over the window; fleetCPU -1 if unknown
	expectedDeliveries int64
}

// measureFanout warms the subscribers up, makes the scenario's publishes at
// their pace, waits up to fanoutSettle for every delivery and stops the fleet.
func measureFanout(tb testing.TB, f *fanoutFleet, publish func([]byte), sc fanoutScenario) fanoutResult {
	tb.Helper()
	f.warmUp(publish, sc.subscribers)
	r := fanoutResult{scenario: sc, expectedDeliveries: int64(sc.publishes) * int64(sc.subscribers)}
	cpu0, fleet0 := processCPU(tb), f.cpuTime()
	r.began = time.Now()
	for i := 1; i <= sc.publishes; i++ {
		d := time.Until(r.began.Add(time.Duration(i-1) * sc.gap))
		if d > 0 {
			time.Sleep(d)
		}
		r.lag = max(r.lag, -d) // a late publish goes at once, to keep the rate
		publish(fanoutPayload(i))
	}
	r.publishing = time.Since(r.began)
	f.awaitDeliveries(r.expectedDeliveries, fanoutSettle)
	r.window = time.Since(r.began)
	r.cpu, r.fleetCPU = processCPU(tb)-cpu0, f.cpuTime()-fleet0
	if fleet0 < 0 {
		r.fleetCPU = -1
	}
	r.FanoutSummary = f.stop()
	return r
}

// fanoutPad makes a publication's data 109 bytes.
var fanoutPad = strings.Repeat("x", 64)

// fanoutPayload is the data of publication seq, stamped now: seq > 0 is
// measured, seq < 0 warms up.
func fanoutPayload(seq int) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	b = append(b, fanoutPad...)
	return append(b, `"}`...)
}

func reportFanout(b *testing.B, r fanoutResult) {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	percent := func(d time.Duration) float64 { return 100 * d.Seconds() / r.window.Seconds() }
	missed := r.expectedDeliveries - r.Deliveries
	if missed > 0 || r.Lost > 0 {
		b.Logf("%d of %d deliveries missed, %d connections lost", missed, r.expectedDeliveries, r.Lost)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(r.scenario.subscribers), "subs")
	if span := time.Duration(r.LastRecv - r.began.UnixNano()); span > 0 {
		b.ReportMetric(float64(r.Deliveries)/span.Seconds(), "deliveries/s")
	}
	b.ReportMetric(float64(r.scenario.publishes)/r.publishing.Seconds(), "pub/s")
	b.ReportMetric(ms(r.P50), "p50-ms")
	b.ReportMetric(ms(r.P99), "p99-ms")
	b.ReportMetric(ms(r.Max), "max-ms")
	b.ReportMetric(ms(r.LastP50), "last-p50-ms")
	b.ReportMetric(ms(r.LastP99), "last-p99-ms")
	b.ReportMetric(ms(r.LastMax), "last-max-ms")
	b.ReportMetric(ms(int64(r.lag)), "lag-max-ms")
	b.ReportMetric(float64(missed), "missed")
	b.ReportMetric(percent(r.cpu), "cpu%")
	if r.fleetCPU >= 0 {
		b.ReportMetric(percent(r.fleetCPU), "fleet-cpu%")
	}
}

// processCPU is the user+system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	user, sys, err := fleet.SelfCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return user + sys
}

// startFanoutFleet starts a child process with n subscribers of url,
// speaking mode, and waits until all are subscribed. If the test ends
// before the fleet is stopped, it is killed.
func startFanoutFleet(tb testing.TB, mode, url string, n int) *fanoutFleet {
	tb.Helper()
	return &fanoutFleet{tb, fleet.Start(tb, fleet.Child{
		Name: baseline.FleetName,
		Test: "TestFanoutFleet",
		Env:  fmt.Sprintf("%s=%s %s %d", fanoutFleetEnv, mode, url, n),
	})}
}

// fanoutFleetEnv, set to "MODE URL N", makes TestFanoutFleet the child: a
// fan-out fleet of N subscribers of URL that ends when its stdin does.
const fanoutFleetEnv = "PULSE_BENCH_FANOUT_FLEET"

// fanoutFleet is the benchmark's end of a fan-out fleet (see
// baseline.RunFanoutFleet for its commands).
type fanoutFleet struct {
	tb testing.TB
	*fleet.Fleet
}

// ask sends a command and returns the first number of the answer,
// failing the test if the fleet has lost a connection.
func (f *fanoutFleet) ask(command string) (n int64) {
	f.tb.Helper()
	var lost int64
	if _, err := fmt.Sscanf(f.Ask(command), "%d %d", &n, &lost); err != nil {
		f.tb.Fatalf("fan-out fleet's answer to %q: %v", command, err)
	}
	if lost > 0 {
		f.tb.Fatalf("fan-out fleet lost %d connections", lost)
	}
	return n
}

// warmUp publishes warm-up messages until every one of the n subscribers
// has had the last one within 100ms of its publish: all are members of the
// room, and nothing of the warm-up is still on its way.
func (f *fanoutFleet) warmUp(publish func([]byte), n int) {
	f.tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for w := 1; ; w++ {
		publish(fanoutPayload(-w))
		if k := f.ask(fmt.Sprintf("warm %d 100", w)); k == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			f.tb.Fatalf("fan-out fleet: not every subscriber had warm-up %d after a minute", w)
		}
	}
}

// awaitDeliveries waits until the fleet has had want deliveries or
// patience has passed.
func (f *fanoutFleet) awaitDeliveries(want int64, patience time.Duration) {
	f.tb.Helper()
	f.ask(fmt.Sprintf("count %d %d", want, patience.Milliseconds()))
}

// cpuTime is the CPU time the fleet's process has used, or -1 if unknown.
func (f *fanoutFleet) cpuTime() time.Duration {
	d, err := f.CPUTime()
	if err != nil {
		return -1
	}
	return d
}

// stop closes every subscriber and returns the summary.
func (f *fanoutFleet) stop() baseline.FanoutSummary {
	f.tb.Helper()
	var s baseline.FanoutSummary
	data := f.Stop()
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		f.tb.Fatalf("fan-out fleet's summary %q: %v", data, err)
	}
	return s
}

// TestFanoutFleet is BenchmarkFanout's fleet when fanoutFleetEnv is set.
// Otherwise it checks the measurement in process, for each side: three
// subscribers get five publications each, and the summary counts them.
func TestFanoutFleet(t *testing.T) {
	if spec := os.Getenv(fanoutFleetEnv); spec != "" {
		var (
			mode, url string
			n         int
		)
		if _, err := fmt.Sscanf(spec, "%s %s %d", &mode, &url, &n); err != nil {
			t.Fatalf("%s=%q: %v", fanoutFleetEnv, spec, err)
		}
		if err := baseline.RunFanoutFleet(mode, url, n, os.Stdin, os.Stdout); err != nil {
			t.Fatal(err)
		}
		return
	}
	sc := fanoutScenario{name: "check", subscribers: 3, publishes: 5, gap: time.Millisecond}
	for _, side := range fanoutSides {
		t.Run(side.name, func(t *testing.T) {
			url, publish := side.start(t)
			// Its cleanup runs before the server stops, even after a failure.
			f := &fanoutFleet{t, fleet.StartInProcess(t, baseline.FleetName, func(in io.Reader, out io.Writer) error {
				return baseline.RunFanoutFleet(side.mode, url, sc.subscribers, in, out)
			})}
			r := measureFanout(t, f, publish, sc)
			if r.Deliveries != 15 || r.Complete != 5 || r.Lost != 0 {
				t.Errorf("summary %+v, want 15 deliveries, 5 publications complete, none lost", r.FanoutSummary)
			}
			if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.LastMax != r.Max || r.LastRecv < r.began.UnixNano() {
				t.Errorf("summary %+v: latencies out of order", r.FanoutSummary)
			}
		})
	}
}
