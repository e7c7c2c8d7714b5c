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
