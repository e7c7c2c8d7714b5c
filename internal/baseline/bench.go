package baseline

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Helpers the benchmarks of pulse and of this baseline share.

// Serve serves h on a fresh loopback port until the test ends and returns
// its WebSocket URL. The caller's earlier cleanups run after it stops.
func Serve(tb testing.TB, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(l)
	}()
	tb.Cleanup(func() {
		hs.Close()
		<-served
	})
	return "ws://" + l.Addr().String() + "/"
}

// DialAll calls dial(i) for every i in [0, n), a few at a time so that the
// listen backlog never overflows, and returns the first error; after one,
// no more are dialled.
func DialAll(n int, dial func(i int) error) error {
	const dialers = 32
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range dialers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := dial(i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n)) // the others stop too
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// FanoutSettle is how long deliveries may still arrive after the last publish.
const FanoutSettle = 5 * time.Second

// FanoutScenario is one shape of fan-out: Publishes made Gap apart to one
// channel of Subscribers.
type FanoutScenario struct {
	Name        string
	Subscribers int
	Publishes   int
	Gap         time.Duration
}

// Pace makes the scenario's publishes at their pace, each with the data of
// FanoutPayload(i), i from 1. It returns when the first publish began and
// the latest a publish began after its time: a late publish goes at once,
// to keep the rate.
func (sc FanoutScenario) Pace(publish func([]byte)) (began time.Time, lag time.Duration) {
	began = time.Now()
	for i := 1; i <= sc.Publishes; i++ {
		d := time.Until(began.Add(time.Duration(i-1) * sc.Gap))
		if d > 0 {
			time.Sleep(d)
		}
		lag = max(lag, -d)
		publish(FanoutPayload(i))
	}
	return began, lag
}

// fanoutPad makes a publication's data 109 bytes.
var fanoutPad = strings.Repeat("x", 64)

// FanoutPayload is the data of publication seq, stamped now: seq > 0 is
// measured, seq < 0 warms up.
func FanoutPayload(seq int) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	b = append(b, fanoutPad...)
	return append(b, `"}`...)
}

// RunUntilCleanup runs run(ctx) in a goroutine until the test ends: the
// cleanup cancels ctx, waits for run to return and fails the test on its
// error. Cleanups registered later (a server's listener) run before it.
func RunUntilCleanup(tb testing.TB, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
}
