package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
)

// serveConfig is what the flags of "pulse serve" set.
type serveConfig struct {
	addr      string
	logLevel  slog.Level
	heartbeat pulse.HeartbeatKind
	origins   originsFlag
	apiKey    string
	// opts holds the numeric bounds; options fills in the rest.
	opts pulse.Options
	// history holds the channels' history bounds.
	history hub.MemoryOptions
	// auth says how tokens are verified (serve_auth.go).
	auth authConfig
	// limits bound connections and publishes (serve_limits.go).
	limits limitsConfig
	// tls holds the certificate of https:// and wss:// (serve_tls.go).
	tls tlsConfig
	// broker is the Redis URL of --broker; "" is the in-memory broker.
	broker string
	// compression offers permessage-deflate (--compression).
	compression bool
}

// defaultAddr is where "pulse serve" listens by default: loopback only,
// since its demo server lets anyone publish. --addr :8080 exposes it.
const defaultAddr = "127.0.0.1:8080"

// parseServeFlags parses the arguments of "pulse serve". Every default is
// the library's, so the help shows what an embedding application gets.
func parseServeFlags(args []string, stdout io.Writer) (*serveConfig, error) {
	c := &serveConfig{logLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", defaultAddr,
		"TCP `address` to listen on; the default serves this machine only, :8080 every interface;\nport 0 picks a free one, shown in the \"listening\" log line")
	fs.DurationVar(&c.opts.Interval, "ping-interval", pulse.DefaultInterval,
		"time between two heartbeats on each connection")
	fs.DurationVar(&c.opts.Timeout, "pong-timeout", pulse.DefaultTimeout,
		"how long past the ping interval a silent client is still alive;\nnothing inbound for ping-interval + pong-timeout closes it with code 4000")
	fs.TextVar(&c.heartbeat, "heartbeat", pulse.HeartbeatFrame,
		"heartbeat `kind` for clients that choose none (subprotocol pulse.v1 or ?heartbeat=):\nframe (RFC 6455 ping), text (\"ping\"/\"pong\" messages) or app (pulse.v1 JSON)")
	fs.TextVar(&c.opts.Engine, "engine", defaultEngine(),
		"what drives connections once upgraded: epoll (Linux: one event loop, no goroutine or buffer\nper idle connection) or std (a goroutine per connection, gorilla/websocket)")
	fs.BoolVar(&c.compression, "compression", false,
		fmt.Sprintf("offer permessage-deflate (RFC 7692) to clients that ask (browsers do): messages of %d bytes\nor more are sent compressed, without context takeover, so an idle connection holds no compressor",
			pulse.DefaultCompressionThreshold))
	fs.DurationVar(&c.opts.WriteTimeout, "write-timeout", pulse.DefaultWriteTimeout,
		"bound on every write; a client that cannot take a write in time is closed with code 4001")
	fs.IntVar(&c.opts.QueueSize, "queue-size", pulse.DefaultQueueSize,
		"outbound messages a connection may hold before it is closed as a slow consumer (code 4001)")
	fs.Int64Var(&c.opts.MaxMessageSize, "max-message-size", pulse.DefaultMaxMessageSize,
		"largest inbound message in `bytes`; a larger one closes the connection with code 1009")
	fs.IntVar(&c.opts.MaxPingRate, "max-ping-rate", pulse.DefaultMaxPingRate,
		"pings a client may send in one second; one more closes the connection with code 1008")
	fs.DurationVar(&c.opts.DrainWindow, "drain-window", pulse.DefaultDrainWindow,
		"on SIGINT or SIGTERM, the time over which every connection is closed with code 1012")
	fs.Var((*levelFlag)(&c.logLevel), "log-level",
		"least `level` logged on stderr: debug, info (the default), warn or error; either case")
	fs.StringVar(&c.apiKey, "api-key", os.Getenv("PULSE_API_KEY"),
		"bearer `key` of POST /api/publish (default $PULSE_API_KEY); empty turns the API off")
	fs.IntVar(&c.history.HistorySize, "history-size", hub.DefaultHistorySize,
		"publications kept per channel for clients that resume")
	fs.DurationVar(&c.history.HistoryTTL, "history-ttl", hub.DefaultHistoryTTL,
		"how long a publication stays in a channel's history")
	fs.StringVar(&c.broker, "broker", os.Getenv("PULSE_BROKER"),
		"Redis `URL` shared by several nodes: redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS,\nseveral comma-separated to spread channels over them (default $PULSE_BROKER);\nempty keeps channels in this process's memory")
	fs.Var(&c.origins, "allow-origin",
		"browser `origin` allowed to connect besides the server's own, such as https://app.example.com;\nrepeat the flag or separate with commas; * allows any (default: same origin only)")
	c.auth.addFlags(fs)
	c.limits.addFlags(fs)
	c.tls.addFlags(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	if err := errors.Join(c.validate(), c.auth.validate(), c.limits.validate(), c.tls.validate()); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return c, nil
}

// validate rejects bounds the flags accept but a server cannot use. The
// library reads zero as "default"; on the command line a zero is a mistake.
func (c *serveConfig) validate() error {
	var bad []string
	for name, ok := range map[string]bool{
		"--ping-interval":    c.opts.Interval > 0,
		"--pong-timeout":     c.opts.Timeout > 0,
		"--write-timeout":    c.opts.WriteTimeout > 0,
		"--queue-size":       c.opts.QueueSize > 0,
		"--max-message-size": c.opts.MaxMessageSize > 0,
		"--max-ping-rate":    c.opts.MaxPingRate > 0,
		"--drain-window":     c.opts.DrainWindow > 0,
		"--history-size":     c.history.HistorySize > 0,
		"--history-ttl":      c.history.HistoryTTL > 0,
	} {
		if !ok {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("%s must be positive", strings.Join(bad, ", "))
	}
	return checkBrokerURL(c.broker)
}

// defaultEngine is epoll where it exists: every test of the root package
// runs on both engines.
func defaultEngine() pulse.Engine {
	if runtime.GOOS == "linux" {
		return pulse.EngineEpoll
	}
	return pulse.EngineStd
}

// options returns the pulse.Options the flags describe.
func (c *serveConfig) options(logger *slog.Logger, observer pulse.Observer) pulse.Options {
	o := c.opts
	o.Heartbeat = c.heartbeat
	o.CheckOrigin = c.origins.check()
	o.Logger = logger
	o.Observer = observer
	if c.compression {
		o.Compression = &pulse.CompressionOptions{}
	}
	return o
}

// levelFlag is a flag.Value holding a slog.Level, shown in lower case
// and parsed in either case.
type levelFlag slog.Level

func (l *levelFlag) String() string { return strings.ToLower(slog.Level(*l).String()) }

func (l *levelFlag) Set(s string) error {
	return (*slog.Level)(l).UnmarshalText([]byte(s))
}

// originsFlag is a flag.Value collecting browser origins, normalized to
// lower case without a trailing slash, or "*".
type originsFlag []string

func (o *originsFlag) String() string { return strings.Join(*o, ",") }

func (o *originsFlag) Set(s string) error {
	for field := range strings.SplitSeq(s, ",") {
		origin, err := parseOrigin(strings.TrimSpace(field))
		if err != nil {
			return err
		}
		*o = append(*o, origin)
	}
	return nil
}

// parseOrigin checks that s is "*" or an origin: scheme://host[:port].
func parseOrigin(s string) (string, error) {
	if s == "*" {
		return s, nil
	}
	s = strings.ToLower(strings.TrimSuffix(s, "/"))
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin (want scheme://host[:port], or *)", s)
	}
	return s, nil
}

// check returns the Options.CheckOrigin the list describes: it admits
// requests without Origin (not a browser), same-origin requests (loopback
// spellings count as one host on a request to a loopback address, see
// sameHost) and the listed origins.
func (o originsFlag) check() func(*http.Request) bool {
	if slices.Contains(o, "*") {
		return func(*http.Request) bool { return true }
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || slices.Contains(o, strings.ToLower(origin)) {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && sameHost(u.Host, r)
	}
}
