package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/limit"
)

// limitsConfig is what the limit flags of "pulse serve" set. Each limit's
// refusals are counted in pulse_refusals_total{reason} and logged with
// their reason, rate-limited.
type limitsConfig struct {
	perAddress       int
	total            int
	upgradeRate      float64
	publishRate      float64
	publishBurst     int
	handshakeTimeout time.Duration
	idleTimeout      time.Duration
}

func (c *limitsConfig) addFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.perAddress, "max-conns-per-addr", limit.DefaultPerAddress,
		"WebSocket connections one source IP address may hold; beyond, HTTP 503 with Retry-After\n(behind a proxy, every client shares the proxy's address: raise it)")
	fs.IntVar(&c.total, "max-conns", limit.DefaultTotal,
		"WebSocket connections the server holds in all; beyond, HTTP 503 with Retry-After")
	fs.Float64Var(&c.upgradeRate, "upgrade-rate", limit.DefaultUpgradeRate,
		"upgrades admitted per second (admission control, so a restart's clients return at a pace the server takes);\nbeyond, HTTP 503 with a Retry-After drawn at random, 1-10 s, spread over what the rate needs")
	fs.Float64Var(&c.publishRate, "publish-rate", hub.DefaultPublishRate,
		"publishes per second one connection may make beyond its burst; beyond, error rate_limited,\nand one that goes on when refused (10 bursts' worth beyond the rate), close 1008")
	fs.IntVar(&c.publishBurst, "publish-burst", hub.DefaultPublishBurst,
		"publishes one connection may make at once")
	fs.DurationVar(&c.handshakeTimeout, "handshake-timeout", readHeaderTimeout,
		"time a client has to send its request headers, WebSocket upgrades included")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", idleTimeout,
		"time a keep-alive HTTP connection may wait for its next request before it is closed")
}

// validate rejects limits that would refuse everything.
func (c *limitsConfig) validate() error {
	if c.perAddress <= 0 || c.total <= 0 || c.upgradeRate <= 0 || c.publishRate <= 0 || c.publishBurst <= 0 || c.handshakeTimeout <= 0 || c.idleTimeout <= 0 {
		return fmt.Errorf("--max-conns-per-addr, --max-conns, --upgrade-rate, --publish-rate, --publish-burst, --handshake-timeout and --idle-timeout must be positive")
	}
	return nil
}

// limiter builds the connection limits of /ws and /echo.
func (c *limitsConfig) limiter(refused func(string)) *limit.Limiter {
	return limit.New(&limit.Options{PerAddress: c.perAddress, Total: c.total, UpgradeRate: c.upgradeRate, Refused: refused})
}

// registerAdmitted exports the upgrades l admitted as the counter
// pulse_upgrades_admitted_total: beside pulse_refusals_total{reason=
// "upgrade_rate"}, what admission control let through, which pulse bench
// storm samples every second against --upgrade-rate.
func registerAdmitted(reg prometheus.Registerer, l *limit.Limiter) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "pulse_upgrades_admitted_total",
		Help: "WebSocket upgrade requests admitted by the connection limits and the upgrade rate (--upgrade-rate).",
	}, func() float64 { return float64(l.Admitted()) }))
}
