package hub_test

import (
	"testing"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/hub/hubtest"
)

func TestMemory(t *testing.T) {
	hubtest.TestBroker(t, func(t *testing.T, cfg hubtest.Config) hub.Broker {
		return hub.NewMemory(&hub.MemoryOptions{
			HistorySize: cfg.HistorySize,
			HistoryTTL:  cfg.HistoryTTL,
			DedupWindow: cfg.DedupWindow,
			Now:         cfg.Now,
		})
	})
}
