package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/pulse-go/pulse/web"
)

// routes returns the endpoints of "pulse serve" on one mux:
//
//	/ws               the pulse.v1 hub: channels, history, resume, presence
//	/echo             pulse connections; every message comes back to its sender
//	/api/publish      POST publishes to a channel, with the --api-key bearer key
//	/pulse.js, /      the browser client, and the chat, dashboard and game demos
//	/metrics  Prometheus metrics of pulse, the Go runtime and the process
//	/healthz  200 "ok" while serving, 200 "degraded" while the broker is down, 503 while draining
//
// /ws and /echo share one pulse.Server, so one liveness rule, one drain and
// one set of metrics cover both.
func (d *daemon) routes(reg *prometheus.Registry) http.Handler {
	registerAdmitted(reg, d.limiter)
	mux := http.NewServeMux()
	mux.Handle("GET /ws", d.originGate(d.checkOrigin, d.pulse.Handler(d.limiter.Handler(d.hub))))
	mux.Handle("GET /echo", d.originGate(d.checkOrigin, d.pulse.Handler(d.limiter.Handler(echo))))
	mux.Handle("/api/publish", d.logAPIRefusals(d.hub.PublishHandler(d.apiKey)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: httpErrorLog{d},
		Registry: reg,
	}))
	mux.HandleFunc("GET /healthz", d.healthz)
	mux.Handle("/", web.Handler()) // pulse.js and the demos; GET and HEAD only
	return mux
}

// healthz reports whether the server takes new connections.
func (d *daemon) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if d.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "draining")
		return
	}
	if d.broker.up != nil && !d.broker.up() {
		fmt.Fprint(w, "degraded: broker unreachable")
		return
	}
	fmt.Fprint(w, "ok")
}

// httpErrorLog is the promhttp.Logger of the metrics endpoint.
type httpErrorLog struct{ d *daemon }

func (l httpErrorLog) Println(v ...any) { l.d.log.Warn("metrics", "error", fmt.Sprint(v...)) }

// inflight counts the HTTP handlers that are running. http.Server.Shutdown
// waits for plain requests but stops tracking a connection once it is
// hijacked, while its handler may still be finishing the upgrade (the
// WebSocket's reader then goes on alone, joined by pulse.Server.Run);
// waiting here joins those handlers too. The zero value is ready to use.
type inflight struct {
	mu     sync.Mutex // guards the fields below
	n      int
	closed bool          // no handler may start
	idle   chan struct{} // made by wait, closed when n reaches zero
}

// track wraps h so that every call is counted. Once wait has been called,
// new requests are refused with 503.
func (f *inflight) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.enter() {
			http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
			return
		}
		defer f.leave()
		h.ServeHTTP(w, r)
	})
}

func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// wait refuses new handlers and waits until the running ones have returned
// or ctx ends.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d HTTP handlers still running", f.count())
	}
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}
