//go:build unix

package redisbroker

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/internal/fleet"
)

// fanoutResult is one measurement of BenchmarkFanout.
type fanoutResult struct {
	baseline.FanoutSummary
	scenario                fanoutScenario
	began                   time.Time     // the first measured publish
	publishing              time.Duration // from the first publish to the last
	window                  time.Duration // from the first publish to the end of waiting
	cpu, fleetCPU, redisCPU time.Duration // over the window; -1 if unknown
	roundTrips              int64         // Redis round trips over the window; -1 for memory
	expected                int64         // deliveries
}

// measureFanout warms the room up, makes the scenario's publishes at their
// pace, waits up to fanoutSettle for every delivery and stops the fleet.
func measureFanout(tb testing.TB, f *fanoutFleet, n fanoutNodes, sc fanoutScenario) fanoutResult {
	tb.Helper()
	f.warmUp(n.publish, sc.subscribers)
	r := fanoutResult{scenario: sc, expected: int64(sc.publishes) * int64(sc.subscribers), redisCPU: -1, roundTrips: -1}
	cpu0, fleet0, redis0, trips0 := processCPU(tb), f.cpuTime(), time.Duration(0), int64(0)
	if n.redisCPU != nil {
		redis0, trips0 = n.redisCPU(), n.roundTrips()
	}
	r.began = time.Now()
	for i := 1; i <= sc.publishes; i++ {
		if d := time.Until(r.began.Add(time.Duration(i-1) * sc.gap)); d > 0 {
			time.Sleep(d)
		}
		n.publish(fanoutPayload(i))
	}
	r.publishing = time.Since(r.began)
	f.ask(fmt.Sprintf("count %d %d", r.expected, fanoutSettle.Milliseconds()))
	r.window = time.Since(r.began)
	r.cpu, r.fleetCPU = processCPU(tb)-cpu0, f.cpuTime()-fleet0
	if fleet0 < 0 {
		r.fleetCPU = -1
	}
	if n.redisCPU != nil {
		r.redisCPU, r.roundTrips = n.redisCPU()-redis0, n.roundTrips()-trips0
	}
	r.FanoutSummary = f.stop()
	return r
}

// fanoutPayload is the data of publication seq, stamped now: seq > 0 is
// measured, seq < 0 warms up. 109 bytes, as in hub's BenchmarkFanout.
func fanoutPayload(seq int) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	b = append(b, strings.Repeat("x", 64)...)
	return append(b, `"}`...)
}

func reportFanout(b *testing.B, r fanoutResult) {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	percent := func(d time.Duration) float64 { return 100 * d.Seconds() / r.window.Seconds() }
	missed := r.expected - r.Deliveries
	if missed > 0 || r.Lost > 0 {
		b.Logf("%d of %d deliveries missed, %d connections lost", missed, r.expected, r.Lost)
	}
	b.ReportMetric(0, "ns/op")
	if span := time.Duration(r.LastRecv - r.began.UnixNano()); span > 0 {
		b.ReportMetric(float64(r.Deliveries)/span.Seconds(), "deliveries/s")
	}
	b.ReportMetric(float64(r.scenario.publishes)/r.publishing.Seconds(), "pub/s")
	b.ReportMetric(ms(r.P50), "p50-ms")
	b.ReportMetric(ms(r.P99), "p99-ms")
	b.ReportMetric(ms(r.Max), "max-ms")
	b.ReportMetric(float64(missed), "missed")
	b.ReportMetric(percent(r.cpu), "cpu%")
	if r.fleetCPU >= 0 {
		b.ReportMetric(percent(r.fleetCPU), "fleet-cpu%")
	}
	if r.redisCPU >= 0 {
		b.ReportMetric(percent(r.redisCPU), "redis-cpu%")
		b.ReportMetric(float64(r.roundTrips)/float64(r.scenario.publishes), "rtt/pub")
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

// fanoutFleetEnv, set to "URL N", makes TestFanoutFleet the child: a
// fan-out fleet of N pulse subscribers of URL that ends when its stdin does.
const fanoutFleetEnv = "PULSE_BENCH_REDIS_FANOUT_FLEET"

// fanoutFleet is the benchmark's end of baseline's fan-out fleet.
type fanoutFleet struct {
	tb testing.TB
	*fleet.Fleet
}

// startFanoutFleet starts a child process with n subscribers of url and
// waits until all are subscribed.
func startFanoutFleet(tb testing.TB, url string, n int) *fanoutFleet {
	tb.Helper()
	return &fanoutFleet{tb, fleet.Start(tb, fleet.Child{
		Name: baseline.FleetName,
		Test: "TestFanoutFleet",
		Env:  fmt.Sprintf("%s=%s %d", fanoutFleetEnv, url, n),
	})}
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
// has had the last one within 100ms of its publish.
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
// subscribers (on node A for Redis) get five publications each (made
// through node B), and the summary counts them.
func TestFanoutFleet(t *testing.T) {
	if spec := os.Getenv(fanoutFleetEnv); spec != "" {
		var url string
		var n int
		if _, err := fmt.Sscanf(spec, "%s %d", &url, &n); err != nil {
			t.Fatalf("%s=%q: %v", fanoutFleetEnv, spec, err)
		}
		if err := baseline.RunFanoutFleet(baseline.FleetPulse, url, n, os.Stdin, os.Stdout); err != nil {
			t.Fatal(err)
		}
		return
	}
	sc := fanoutScenario{name: "check", subscribers: 3, publishes: 5, gap: time.Millisecond}
	for _, side := range fanoutSides {
		t.Run(side.name, func(t *testing.T) {
			n := side.start(t)
			f := &fanoutFleet{t, fleet.StartInProcess(t, baseline.FleetName, func(in io.Reader, out io.Writer) error {
				return baseline.RunFanoutFleet(baseline.FleetPulse, n.url, sc.subscribers, in, out)
			})}
			r := measureFanout(t, f, n, sc)
			if r.Deliveries != 15 || r.Complete != 5 || r.Lost != 0 {
				t.Errorf("summary %+v, want 15 deliveries, 5 publications complete, none lost", r.FanoutSummary)
			}
			if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
				t.Errorf("summary %+v: latencies out of order", r.FanoutSummary)
			}
			if n.roundTrips != nil && r.roundTrips < int64(sc.publishes) {
				t.Errorf("%d Redis round trips for %d publications: the hook counts nothing", r.roundTrips, sc.publishes)
			}
		})
	}
}
