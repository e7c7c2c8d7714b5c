package pulse

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Why a connection ended, as counted in pulse_disconnects_total{reason}.
const (
	reasonHeartbeatTimeout = "heartbeat_timeout"
	reasonSlowConsumer     = "slow_consumer"
	reasonWriteTimeout     = "write_timeout"
	reasonWriteError       = "write_error"
	reasonReadError        = "read_error"
	reasonPeerClose        = "peer_close"
	reasonServerClose      = "server_close"
	reasonShutdown         = "shutdown"
	reasonMessageTooBig    = "message_too_big"
	reasonInvalidPayload   = "invalid_payload"
)

var allReasons = []string{
	reasonHeartbeatTimeout, reasonSlowConsumer, reasonWriteTimeout, reasonWriteError,
	reasonReadError, reasonPeerClose, reasonServerClose, reasonShutdown,
	reasonMessageTooBig, reasonInvalidPayload,
}

// Metrics holds a Server's Prometheus collectors. Pass one in
// Options.Metrics; the methods of a nil *Metrics do nothing.
type Metrics struct {
	connections prometheus.Gauge
	disconnects *prometheus.CounterVec
	rtt         prometheus.Histogram
	pingsSent   *prometheus.CounterVec
	pongs       *prometheus.CounterVec

	// The counters of each heartbeat kind, looked up once: a heartbeat
	// costs no label hashing.
	pingsByKind [len(heartbeatNames)]prometheus.Counter
	pongsByKind [len(heartbeatNames)]prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg:
//
//	pulse_connections                  gauge    open connections
//	pulse_disconnects_total{reason}    counter  ended connections by reason
//	pulse_heartbeat_rtt_seconds        histogram heartbeat round trips
//	pulse_pings_sent_total{kind}       counter  heartbeats written
//	pulse_pongs_received_total{kind}   counter  heartbeat answers received
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_connections", Help: "Open WebSocket connections.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_disconnects_total", Help: "Ended connections by reason.",
		}, []string{"reason"}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pulse_heartbeat_rtt_seconds", Help: "Heartbeat round-trip time.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		pingsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_pings_sent_total", Help: "Heartbeats written, by kind.",
		}, []string{"kind"}),
		pongs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_pongs_received_total", Help: "Heartbeat answers received, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.connections, m.disconnects, m.rtt, m.pingsSent, m.pongs)
	for _, reason := range allReasons {
		m.disconnects.WithLabelValues(reason)
	}
	for kind, name := range heartbeatNames {
		if name != "" {
			m.pingsByKind[kind] = m.pingsSent.WithLabelValues(name)
			m.pongsByKind[kind] = m.pongs.WithLabelValues(name)
		}
	}
	return m
}

func (m *Metrics) opened() {
	if m != nil {
		m.connections.Inc()
	}
}

func (m *Metrics) closed(reason string) {
	if m != nil {
		m.connections.Dec()
		m.disconnects.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) pingSent(kind HeartbeatKind) {
	if m != nil {
		m.pingsByKind[kind].Inc()
	}
}

func (m *Metrics) pong(kind HeartbeatKind, rtt time.Duration) {
	if m != nil {
		m.pongsByKind[kind].Inc()
		m.rtt.Observe(rtt.Seconds())
	}
}
