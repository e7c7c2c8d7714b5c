package redisbroker

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// BenchmarkPublish measures publish throughput of the Redis broker beside
// the memory broker in the same run: many goroutines (publishers=N, over
// 16 channels) call Publish at once, as a busy node's connections do.
//
//	go test -run '^$' -bench Publish ./redisbroker/
//
// Metrics: pub/s (publications per second of wall time) and, for Redis,
// rtt/pub (round trips to Redis per publication, counted by a go-redis
// hook).
func BenchmarkPublish(b *testing.B) {
	sides := []struct {
		name  string
		start func(b *testing.B) (hub.Broker, *roundTrips)
	}{
		{"memory", func(b *testing.B) (hub.Broker, *roundTrips) {
			m := hub.NewMemory(nil)
			b.Cleanup(func() { m.Close() })
			return m, nil
		}},
		{"redis", func(b *testing.B) (hub.Broker, *roundTrips) {
			br, err := New(context.Background(), redistest.Start(b).URL(), &Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { br.Close() })
			trips := &roundTrips{}
			br.rdb.AddHook(trips)
			return br, trips
		}},
	}
	for _, publishers := range []int{1, 64} {
		for _, side := range sides {
			b.Run("publishers="+strconv.Itoa(publishers)+"/"+side.name, func(b *testing.B) {
				br, trips := side.start(b)
				benchPublish(b, br, trips, publishers)
			})
		}
	}
}

// benchPublish makes b.N publications from publishers goroutines.
func benchPublish(b *testing.B, br hub.Broker, trips *roundTrips, publishers int) {
	data := baseline.FanoutPayload(1)
	var next atomic.Int64
	publish := func(channel string) bool {
		_, err := br.Publish(context.Background(), channel, data, hub.PublishOptions{})
		if err != nil {
			b.Error(err)
		}
		return err == nil
	}
	var trips0 int64
	if trips != nil {
		trips0 = trips.n.Load()
	}
	b.ResetTimer()
	if publishers == 1 {
		for i := 0; i < b.N && publish("bench-0"); i++ {
		}
	} else {
		b.SetParallelism(publishers / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			channel := "bench-" + strconv.Itoa(int(next.Add(1)%16))
			for pb.Next() && publish(channel) {
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pub/s")
	if trips != nil {
		b.ReportMetric(float64(trips.n.Load()-trips0)/float64(b.N), "rtt/pub")
	}
}
