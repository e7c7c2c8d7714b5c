//go:build unix

package baseline

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pulse-go/pulse/internal/fleet"
)

// The benchmark's end of the fan-out fleet, shared by hub's and
// redisbroker's BenchmarkFanout: the fleet driven through its commands (see
// RunFanoutFleet).

// FanoutFleetEnv, set to "MODE URL N", makes a benchmark package's
// TestFanoutFleet the child: a fan-out fleet of N subscribers of URL
// speaking MODE that ends when its stdin does (see FanoutFleetChild).
const FanoutFleetEnv = "PULSE_BENCH_FANOUT_FLEET"

// ProcessCPU is the user+system CPU time this process has used.
func ProcessCPU(tb testing.TB) time.Duration {
	user, sys, err := fleet.SelfCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return user + sys
}

// FanoutFleet is the benchmark's end of a fan-out fleet. Its methods fail
// the test on a broken answer or a lost connection.
type FanoutFleet struct {
	tb testing.TB
	f  *fleet.Fleet
}

// StartFanoutFleet starts a child process, this test binary re-executed as
// TestFanoutFleet, with n subscribers of url speaking mode, and waits until
// all are subscribed. If the test ends before the fleet is stopped, it is
// killed.
func StartFanoutFleet(tb testing.TB, mode, url string, n int) *FanoutFleet {
	tb.Helper()
	return &FanoutFleet{tb, fleet.Start(tb, fleet.Child{
		Name: FleetName,
		Test: "TestFanoutFleet",
		Env:  fmt.Sprintf("%s=%s %s %d", FanoutFleetEnv, mode, url, n),
	})}
}

// StartFanoutFleetInProcess is StartFanoutFleet in this process, to check
// the measurement in a test. Its cleanup runs before the server's, even
// after a failure, if the server was started first.
func StartFanoutFleetInProcess(tb testing.TB, mode, url string, n int) *FanoutFleet {
	tb.Helper()
	return &FanoutFleet{tb, fleet.StartInProcess(tb, FleetName, func(in io.Reader, out io.Writer) error {
		return RunFanoutFleet(mode, url, n, in, out)
	})}
}

// FanoutFleetChild runs the fleet and reports true if FanoutFleetEnv is
// set: TestFanoutFleet is then the child of StartFanoutFleet and returns.
func FanoutFleetChild(t *testing.T) bool {
	spec := os.Getenv(FanoutFleetEnv)
	if spec == "" {
		return false
	}
	var (
		mode, url string
		n         int
	)
	if _, err := fmt.Sscanf(spec, "%s %s %d", &mode, &url, &n); err != nil {
		t.Fatalf("%s=%q: %v", FanoutFleetEnv, spec, err)
	}
	if err := RunFanoutFleet(mode, url, n, os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
	return true
}

// ask sends a command and returns the first number of the answer.
func (f *FanoutFleet) ask(command string) (n int64) {
	f.tb.Helper()
	var lost int64
	if _, err := fmt.Sscanf(f.f.Ask(command), "%d %d", &n, &lost); err != nil {
		f.tb.Fatalf("fan-out fleet's answer to %q: %v", command, err)
	}
	if lost > 0 {
		f.tb.Fatalf("fan-out fleet lost %d connections", lost)
	}
	return n
}

// WarmUp publishes warm-up messages until every one of the n subscribers
// has had the last one within 100ms of its publish: all are members of the
// room, and nothing of the warm-up is still on its way.
func (f *FanoutFleet) WarmUp(publish func([]byte), n int) {
	f.tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for w := 1; ; w++ {
		publish(FanoutPayload(-w))
		if k := f.ask(fmt.Sprintf("warm %d 100", w)); k == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			f.tb.Fatalf("fan-out fleet: not every subscriber had warm-up %d after a minute", w)
		}
	}
}

// AwaitDeliveries waits until the fleet has had want deliveries or
// patience has passed.
func (f *FanoutFleet) AwaitDeliveries(want int64, patience time.Duration) {
	f.tb.Helper()
	f.ask(fmt.Sprintf("count %d %d", want, patience.Milliseconds()))
}

// CPUTime is the CPU time the fleet's process has used, or -1 if unknown.
func (f *FanoutFleet) CPUTime() time.Duration {
	d, err := f.f.CPUTime()
	if err != nil {
		return -1
	}
	return d
}

// Stop closes every subscriber and returns the summary.
func (f *FanoutFleet) Stop() FanoutSummary {
	f.tb.Helper()
	var s FanoutSummary
	data := f.f.Stop()
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		f.tb.Fatalf("fan-out fleet's summary %q: %v", data, err)
	}
	return s
}

// FanoutResult is one measurement of a fan-out scenario.
type FanoutResult struct {
	FanoutSummary
	Scenario      FanoutScenario
	Began         time.Time     // the first measured publish
	Publishing    time.Duration // from the first publish to the last
	Lag           time.Duration // the latest a publish began after its time
	Window        time.Duration // from the first publish to the end of waiting
	CPU, FleetCPU time.Duration // this process's and the fleet's over the window; FleetCPU -1 if unknown
	Expected      int64         // deliveries
}

// Measure warms the subscribers up, makes the scenario's publishes at their
// pace, waits up to FanoutSettle for every delivery and stops the fleet.
// mark, if not nil, is called just before the first measured publish and
// the func it returns once the waiting is over: they read counters of the
// caller's own over the same window.
func (f *FanoutFleet) Measure(publish func([]byte), sc FanoutScenario, mark func() (end func())) FanoutResult {
	f.tb.Helper()
	f.WarmUp(publish, sc.Subscribers)
	r := FanoutResult{Scenario: sc, Expected: int64(sc.Publishes) * int64(sc.Subscribers)}
	cpu0, fleet0 := ProcessCPU(f.tb), f.CPUTime()
	end := func() {}
	if mark != nil {
		end = mark()
	}
	r.Began, r.Lag = sc.Pace(publish)
	r.Publishing = time.Since(r.Began)
	f.AwaitDeliveries(r.Expected, FanoutSettle)
	r.Window = time.Since(r.Began)
	r.CPU, r.FleetCPU = ProcessCPU(f.tb)-cpu0, f.CPUTime()-fleet0
	if fleet0 < 0 {
		r.FleetCPU = -1
	}
	end()
	r.FanoutSummary = f.Stop()
	return r
}

// Report reports the metrics every fan-out benchmark has: deliveries/s,
// pub/s, p50-ms, p99-ms, max-ms, missed, cpu% and fleet-cpu% (see hub's
// BenchmarkFanout), with ns/op suppressed. It logs missed deliveries and
// lost connections.
func (r FanoutResult) Report(b *testing.B) {
	missed := r.Expected - r.Deliveries
	if missed > 0 || r.Lost > 0 {
		b.Logf("%d of %d deliveries missed, %d connections lost", missed, r.Expected, r.Lost)
	}
	b.ReportMetric(0, "ns/op")
	if span := time.Duration(r.LastRecv - r.Began.UnixNano()); span > 0 {
		b.ReportMetric(float64(r.Deliveries)/span.Seconds(), "deliveries/s")
	}
	b.ReportMetric(float64(r.Scenario.Publishes)/r.Publishing.Seconds(), "pub/s")
	b.ReportMetric(Millis(r.P50), "p50-ms")
	b.ReportMetric(Millis(r.P99), "p99-ms")
	b.ReportMetric(Millis(r.Max), "max-ms")
	b.ReportMetric(float64(missed), "missed")
	b.ReportMetric(r.Percent(r.CPU), "cpu%")
	if r.FleetCPU >= 0 {
		b.ReportMetric(r.Percent(r.FleetCPU), "fleet-cpu%")
	}
}

// Percent is d as a percentage of one core over the window.
func (r FanoutResult) Percent(d time.Duration) float64 {
	return 100 * d.Seconds() / r.Window.Seconds()
}

// Millis is ns nanoseconds in milliseconds.
func Millis(ns int64) float64 { return float64(ns) / 1e6 }
