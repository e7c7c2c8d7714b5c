// Package prom counts a pulse Server's connections and heartbeats in
// Prometheus. Give the Observer that New returns to the server:
//
//	srv, err := pulse.NewServer(&pulse.Options{Observer: prom.New(prometheus.DefaultRegisterer)})
//
// It is a package of its own so that programs using package pulse or its Go
// client without Prometheus do not link it.
package prom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-go/pulse"
)

// heartbeatKinds are the kinds whose series New creates.
var heartbeatKinds = [...]pulse.HeartbeatKind{pulse.HeartbeatFrame, pulse.HeartbeatApp, pulse.HeartbeatText}

// Observer is a pulse.Observer that keeps Prometheus collectors. Its
// methods may be called concurrently; each costs a few atomic additions.
type Observer struct {
	// Set by New, never change.
	connections prometheus.Gauge
	disconnects *prometheus.CounterVec
	rtt         prometheus.Histogram
	pingsSent   *prometheus.CounterVec
	pongs       *prometheus.CounterVec

	// The counters of each heartbeat kind, looked up once: a heartbeat
	// costs no label hashing. Indexed by the kind; a kind New did not know
	// has nil and is looked up by label instead.
	pingsByKind [len(heartbeatKinds) + 1]prometheus.Counter
	pongsByKind [len(heartbeatKinds) + 1]prometheus.Counter
}

var _ pulse.Observer = (*Observer)(nil)

// New creates the collectors and registers them with reg:
//
//	pulse_connections                  gauge     open connections
//	pulse_disconnects_total{reason}    counter   ended connections by reason
//	pulse_heartbeat_rtt_seconds        histogram heartbeat round trips
//	pulse_pings_sent_total{kind}       counter   heartbeats written
//	pulse_pongs_received_total{kind}   counter   heartbeat answers received
//
// Every reason of pulse.DisconnectReasons and every heartbeat kind has its
// series from the start, at zero. New panics if reg already holds
// collectors of these names, as prometheus.MustRegister does.
func New(reg prometheus.Registerer) *Observer {
	o := &Observer{
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
	reg.MustRegister(o.connections, o.disconnects, o.rtt, o.pingsSent, o.pongs)
	for _, reason := range pulse.DisconnectReasons() {
		o.disconnects.WithLabelValues(string(reason))
	}
	for _, kind := range heartbeatKinds {
		o.pingsByKind[kind] = o.pingsSent.WithLabelValues(kind.String())
		o.pongsByKind[kind] = o.pongs.WithLabelValues(kind.String())
	}
	return o
}

// Opened counts an accepted connection.
func (o *Observer) Opened() { o.connections.Inc() }

// Closed counts an ended connection under its reason.
func (o *Observer) Closed(reason pulse.DisconnectReason) {
	o.connections.Dec()
	o.disconnects.WithLabelValues(string(reason)).Inc()
}

// PingSent counts a heartbeat written.
func (o *Observer) PingSent(kind pulse.HeartbeatKind) {
	counter(o.pingsByKind[:], o.pingsSent, kind).Inc()
}

// PongReceived counts a heartbeat answered and observes its round trip.
func (o *Observer) PongReceived(kind pulse.HeartbeatKind, rtt time.Duration) {
	counter(o.pongsByKind[:], o.pongs, kind).Inc()
	o.rtt.Observe(rtt.Seconds())
}

// counter returns the counter of kind: the one looked up by New, or for a
// kind it did not know, the series of the kind's name.
func counter(byKind []prometheus.Counter, vec *prometheus.CounterVec, kind pulse.HeartbeatKind) prometheus.Counter {
	if kind >= 0 && int(kind) < len(byKind) && byKind[kind] != nil {
		return byKind[kind]
	}
	return vec.WithLabelValues(kind.String())
}
