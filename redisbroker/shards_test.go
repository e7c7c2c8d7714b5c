package redisbroker

import (
	"testing"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/hub/hubtest"
	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// TestShards runs the conformance suite against channels spread over two
// redis-servers.
func TestShards(t *testing.T) {
	urls := []string{redistest.Start(t).URL(), redistest.Start(t).URL()}
	hubtest.TestBroker(t, func(t *testing.T, cfg hubtest.Config) hub.Broker {
		s, err := NewShards(t.Context(), urls, &Options{
			Prefix:      "test-" + randomHex(4),
			HistorySize: cfg.HistorySize,
			HistoryTTL:  cfg.HistoryTTL,
			DedupWindow: cfg.DedupWindow,
			Now:         cfg.Now,
		})
		if err != nil {
			t.Fatalf("NewShards: %v", err)
		}
		return s
	})
}

// TestShardsSpread: channels land on every shard, each on one, the same
// one for every node.
func TestShardsSpread(t *testing.T) {
	servers := []*redistest.Server{redistest.Start(t), redistest.Start(t)}
	urls := []string{servers[0].URL(), servers[1].URL()}
	opts := &Options{Prefix: "test-" + randomHex(4)}
	s1, err := NewShards(t.Context(), urls, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := NewShards(t.Context(), urls, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	channels := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, channel := range channels {
		if _, err := s1.Publish(t.Context(), channel, []byte(`1`), hub.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, top, err := s2.History(t.Context(), channel, hub.Position{}); err != nil || top.Offset != 1 {
			t.Errorf("History(%q) on the other node: top %v, %v; want offset 1", channel, top, err)
		}
	}
	for i, server := range servers {
		n, err := admin(t, server).Keys(t.Context(), opts.Prefix+":{*}:meta").Result()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("shard %d holds %d of %d channels", i, len(n), len(channels))
		if len(n) == 0 || len(n) == len(channels) {
			t.Errorf("shard %d holds %d of %d channels, want some", i, len(n), len(channels))
		}
	}
}
