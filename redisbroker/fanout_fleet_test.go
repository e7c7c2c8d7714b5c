//go:build unix

package redisbroker

import (
	"testing"
	"time"

	"github.com/pulse-go/pulse/internal/baseline"
)

// fanoutResult is one measurement of BenchmarkFanout.
type fanoutResult struct {
	baseline.FanoutSummary
	scenario                baseline.FanoutScenario
	began                   time.Time     // the first measured publish
	publishing              time.Duration // from the first publish to the last
	window                  time.Duration // from the first publish to the end of waiting
	cpu, fleetCPU, redisCPU time.Duration // over the window; -1 if unknown
	roundTrips              int64         // Redis round trips over the window; -1 for memory
	expected                int64         // deliveries
}

// measureFanout warms the room up, makes the scenario's publishes at their
// pace, waits up to baseline.FanoutSettle for every delivery and stops the
// fleet.
func measureFanout(tb testing.TB, f *baseline.FanoutFleet, n fanoutNodes, sc baseline.FanoutScenario) fanoutResult {
	tb.Helper()
	f.WarmUp(n.publish, sc.Subscribers)
	r := fanoutResult{scenario: sc, expected: int64(sc.Publishes) * int64(sc.Subscribers), redisCPU: -1, roundTrips: -1}
	cpu0, fleet0, redis0, trips0 := baseline.ProcessCPU(tb), f.CPUTime(), time.Duration(0), int64(0)
	if n.redisCPU != nil {
		redis0, trips0 = n.redisCPU(), n.roundTrips()
	}
	r.began, _ = sc.Pace(n.publish)
	r.publishing = time.Since(r.began)
	f.AwaitDeliveries(r.expected, baseline.FanoutSettle)
	r.window = time.Since(r.began)
	r.cpu, r.fleetCPU = baseline.ProcessCPU(tb)-cpu0, f.CPUTime()-fleet0
	if fleet0 < 0 {
		r.fleetCPU = -1
	}
	if n.redisCPU != nil {
		r.redisCPU, r.roundTrips = n.redisCPU()-redis0, n.roundTrips()-trips0
	}
	r.FanoutSummary = f.Stop()
	return r
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
	b.ReportMetric(float64(r.scenario.Publishes)/r.publishing.Seconds(), "pub/s")
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
		b.ReportMetric(float64(r.roundTrips)/float64(r.scenario.Publishes), "rtt/pub")
	}
}

// TestFanoutFleet is BenchmarkFanout's fleet when baseline.FanoutFleetEnv
// is set.
// Otherwise it checks the measurement in process, for each side: three
// subscribers (on node A for Redis) get five publications each (made
// through node B), and the summary counts them.
func TestFanoutFleet(t *testing.T) {
	if baseline.FanoutFleetChild(t) {
		return
	}
	sc := baseline.FanoutScenario{Name: "check", Subscribers: 3, Publishes: 5, Gap: time.Millisecond}
	for _, side := range fanoutSides {
		t.Run(side.name, func(t *testing.T) {
			n := side.start(t)
			f := baseline.StartFanoutFleetInProcess(t, baseline.FleetPulse, n.url, sc.Subscribers)
			r := measureFanout(t, f, n, sc)
			if r.Deliveries != 15 || r.Complete != 5 || r.Lost != 0 {
				t.Errorf("summary %+v, want 15 deliveries, 5 publications complete, none lost", r.FanoutSummary)
			}
			if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
				t.Errorf("summary %+v: latencies out of order", r.FanoutSummary)
			}
			if n.roundTrips != nil && r.roundTrips < int64(sc.Publishes) {
				t.Errorf("%d Redis round trips for %d publications: the hook counts nothing", r.roundTrips, sc.Publishes)
			}
		})
	}
}
