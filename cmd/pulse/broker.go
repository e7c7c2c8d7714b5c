package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/redisbroker"
	"github.com/redis/go-redis/v9"
)

// brokerConnectTimeout bounds the wait for the --broker Redis at start: an
// unreachable one fails "pulse serve" with a clear error after it.
const brokerConnectTimeout = 5 * time.Second

// serveBroker is the broker of "pulse serve" and what the daemon needs of
// it besides hub.Broker.
type serveBroker struct {
	hub.Broker
	up     func() bool  // nil for the in-memory broker, which is never down
	errors func() int64 // calls that failed because the broker did not answer; nil for memory
}

// register adds the broker's metrics to reg: pulse_broker_up and
// pulse_broker_errors_total, for a broker that can be down.
func (b serveBroker) register(reg prometheus.Registerer) {
	if b.up == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pulse_broker_up", Help: "1 while the broker answers, 0 while it does not."},
			func() float64 {
				if b.up() {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pulse_broker_errors_total", Help: "Broker calls that failed because the broker did not answer."},
			func() float64 { return float64(b.errors()) }),
	)
}

// checkBrokerURL accepts "" (the in-memory broker) and a comma-separated
// list of redis:// or rediss:// URLs.
func checkBrokerURL(s string) error {
	if s == "" {
		return nil
	}
	for _, one := range strings.Split(s, ",") {
		u, err := url.Parse(one)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return fmt.Errorf("--broker %q: want redis://[:PASSWORD@]HOST:PORT[/DB], or rediss://... for TLS, comma-separated for shards", redactURL(one))
		}
	}
	return nil
}

// newServeBroker returns the broker cfg names: the in-memory one without
// --broker, else Redis (several, as shards, for a comma-separated list),
// which must answer within brokerConnectTimeout. A
// Redis node's members leave the other nodes' presence within half of
// the liveness bound after it dies, well within the bound plus 1 s.
func newServeBroker(cfg *serveConfig, logger *slog.Logger) (serveBroker, error) {
	if cfg.broker == "" {
		return serveBroker{Broker: hub.NewMemory(&cfg.history)}, nil
	}
	redis.SetLogger(redisLog{logger})
	opts := &redisbroker.Options{
		HistorySize: cfg.history.HistorySize,
		HistoryTTL:  cfg.history.HistoryTTL,
		NodeTimeout: max((cfg.opts.Interval+cfg.opts.Timeout)/2, time.Second),
		Logger:      logger,
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerConnectTimeout)
	defer cancel()
	var why error // of the last attempt that ended on its own
	for {
		b, err := redisbroker.NewShards(ctx, strings.Split(cfg.broker, ","), opts)
		if err == nil {
			return serveBroker{Broker: b, up: b.Up, errors: b.Errors}, nil
		}
		if ctx.Err() == nil || why == nil {
			why = err
		}
		select {
		case <-ctx.Done(): // a Redis starting beside us had its chance
			return serveBroker{}, fmt.Errorf("broker %s unreachable for %v: %w", redactURL(cfg.broker), brokerConnectTimeout, why)
		case <-time.After(brokerRetry):
		}
	}
}

// brokerRetry is the pause between two attempts to reach Redis at start.
const brokerRetry = 250 * time.Millisecond

// redisLog sends go-redis's own log lines (its reconnects) to the
// server's log at Debug level: the broker reports what matters itself.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// redactURL hides the passwords of broker URLs, for errors and logs.
func redactURL(s string) string {
	var urls []string
	for _, one := range strings.Split(s, ",") {
		u, err := url.Parse(one)
		if err != nil {
			one = "(unparsable URL)"
		} else {
			one = u.Redacted()
		}
		urls = append(urls, one)
	}
	return strings.Join(urls, ",")
}
