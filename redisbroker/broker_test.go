package redisbroker

import (
	"testing"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/hub/hubtest"
	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// TestBroker runs the conformance suite against a real redis-server, each
// subtest's broker under its own key prefix.
func TestBroker(t *testing.T) {
	server := redistest.Start(t)
	hubtest.TestBroker(t, func(t *testing.T, cfg hubtest.Config) hub.Broker {
		return newTestBroker(t, server, &Options{
			HistorySize: cfg.HistorySize,
			HistoryTTL:  cfg.HistoryTTL,
			DedupWindow: cfg.DedupWindow,
			Now:         cfg.Now,
		})
	})
}

// newTestBroker returns a Broker on server under a fresh prefix, closed
// when t ends.
func newTestBroker(t *testing.T, server *redistest.Server, opts *Options) *Broker {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "test-" + randomHex(4)
	}
	b, err := New(t.Context(), server.URL(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
