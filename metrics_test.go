package pulse

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The counters follow the connections: opened, heartbeats each way, RTTs,
// and the reason each one ended.
func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	l := startLive(t, &Options{Interval: 50 * time.Millisecond, Timeout: time.Second, Metrics: m})
	p := dialPeer(t, l.url("/echo?heartbeat=text", ""), HeartbeatText)
	l.nextOpen(t)
	p.awaitBeats(t, 3)
	if got := testutil.ToFloat64(m.connections); got != 1 {
		t.Fatalf("pulse_connections %v, want 1", got)
	}
	// The third ping may be answered before its writer counts it.
	if pings := testutil.ToFloat64(m.pingsSent.WithLabelValues("text")); pings < 2 {
		t.Fatalf("pings sent %v, want at least 2", pings)
	}
	p.ws.Close()
	l.nextClose(t)
	if got := testutil.ToFloat64(m.disconnects.WithLabelValues(reasonReadError)); got != 1 {
		t.Fatalf("disconnects{read_error} %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.connections); got != 0 {
		t.Fatalf("pulse_connections %v after the close, want 0", got)
	}
	pongs := testutil.ToFloat64(m.pongs.WithLabelValues("text"))
	if rtts := testutil.CollectAndCount(m.rtt); pongs < 2 || rtts != 1 {
		t.Fatalf("pongs %v, RTT histogram series %d; want at least 2 pongs observed", pongs, rtts)
	}
}
