package redisbroker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// publishAll makes n publications to channel from n goroutines released
// at once, and returns their offsets.
func publishAll(t *testing.T, b *Broker, channel string, n int) []uint64 {
	t.Helper()
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		offsets []uint64
	)
	for range n {
		wg.Go(func() {
			<-start
			res, err := b.Publish(t.Context(), channel, []byte(`{}`), hub.PublishOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			offsets = append(offsets, res.Pos.Offset)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(offsets)
	return offsets
}

// checkSpan reports unless offsets are from+1 .. from+n.
func checkSpan(t *testing.T, offsets []uint64, from uint64, n int) {
	t.Helper()
	if len(offsets) != n {
		t.Fatalf("%d publications made, want %d", len(offsets), n)
	}
	for i, o := range offsets {
		if o != from+uint64(i)+1 {
			t.Fatalf("offsets %v: want %d to %d, each once", offsets, from+1, from+uint64(n))
		}
	}
}

// TestPipelinedPublishes: concurrent publishes share pipelines (fewer
// round trips than publications) and each gets its own offset; after
// Redis forgot the scripts (SCRIPT FLUSH, as a restart does), they are
// still made.
func TestPipelinedPublishes(t *testing.T) {
	server := redistest.Start(t)
	b := newTestBroker(t, server, &Options{})
	trips := &roundTrips{}
	b.rdb.AddHook(trips)
	const n = 300
	checkSpan(t, publishAll(t, b, "pipe", n), 0, n)
	if got := trips.n.Load(); got >= n {
		t.Errorf("%d round trips for %d concurrent publications: none was pipelined", got, n)
	}
	t.Logf("%d concurrent publications in %d round trips", n, trips.n.Load())

	admin := redis.NewClient(&redis.Options{Addr: server.Addr(), Protocol: 2})
	defer admin.Close()
	if err := admin.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	checkSpan(t, publishAll(t, b, "pipe", n), n, n)
}

// TestPublishesAtClose: publishes waiting for a pipeline when the broker
// closes return hub.ErrClosed or their result; none hangs.
func TestPublishesAtClose(t *testing.T) {
	b := newTestBroker(t, redistest.Start(t), &Options{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			_, err := b.Publish(context.Background(), "closing", []byte(`{}`), hub.PublishOptions{})
			if err != nil && !errors.Is(err, hub.ErrClosed) {
				t.Errorf("publish at close: %v, want nil or hub.ErrClosed", err)
			}
		})
	}
	b.Close()
	wg.Wait()
}
