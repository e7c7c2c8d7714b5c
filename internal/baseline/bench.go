package baseline

import (
	"net"
	"net/http"
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
