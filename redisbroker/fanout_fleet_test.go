//go:build unix

package redisbroker

import (
	"testing"
	"time"

	"github.com/pulse-go/pulse/internal/baseline"
)

// fanoutResult is one measurement of BenchmarkFanout.
type fanoutResult struct {
	baseline.FanoutResult
	redisCPU   time.Duration // over the window; -1 if unknown
	roundTrips int64         // Redis round trips over the window; -1 for memory
}

// measureFanout measures sc on n and, for Redis, its CPU time and round
// trips over the same window.
func measureFanout(f *baseline.FanoutFleet, n fanoutNodes, sc baseline.FanoutScenario) fanoutResult {
	r := fanoutResult{redisCPU: -1, roundTrips: -1}
	var mark func() func()
	if n.redisCPU != nil {
		mark = func() func() {
			redis0, trips0 := n.redisCPU(), n.roundTrips()
			return func() { r.redisCPU, r.roundTrips = n.redisCPU()-redis0, n.roundTrips()-trips0 }
		}
	}
	r.FanoutResult = f.Measure(n.publish, sc, mark)
	return r
}

// reportFanout adds, for Redis, its share of a core and its round trips
// per publication to the common metrics.
func reportFanout(b *testing.B, r fanoutResult) {
	r.Report(b)
	if r.redisCPU >= 0 {
		b.ReportMetric(r.Percent(r.redisCPU), "redis-cpu%")
		b.ReportMetric(float64(r.roundTrips)/float64(r.Scenario.Publishes), "rtt/pub")
	}
}

// TestFanoutFleet is BenchmarkFanout's fleet when baseline.FanoutFleetEnv
// is set. Otherwise it checks the measurement in process, for each side: three
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
			r := measureFanout(f, n, sc)
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
