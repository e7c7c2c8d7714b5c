package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

// chaosConfig is what the flags of "pulse chaos" set.
type chaosConfig struct {
	listen, target, control string
	keys                    autoBool
}

// autoBool is a boolean flag whose default, "auto", is decided at run
// time. It satisfies flag's boolFlag, so "--keys" alone means true.
type autoBool struct{ set, on bool }

func (b *autoBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.on)
}

func (b *autoBool) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b = autoBool{set: true, on: on}
	return nil
}

func (b *autoBool) IsBoolFlag() bool { return true }

// value returns the flag's value, or auto when it was not given.
func (b autoBool) value(auto bool) bool {
	if !b.set {
		return auto
	}
	return b.on
}

func parseChaosFlags(args []string, stdout io.Writer) (*chaosConfig, error) {
	c := &chaosConfig{}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8081", "TCP `address` the proxy accepts clients on; port 0 picks a free one")
	fs.StringVar(&c.target, "target", "", "TCP `address` of the server the proxy forwards to (required)")
	fs.StringVar(&c.control, "control", "127.0.0.1:8474", "TCP `address` of the HTTP control endpoint; port 0 picks a free one")
	fs.Var(&c.keys, "keys", "read one-letter commands from stdin (default: on when stdin is a terminal)")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "\n%s\n%s\n", chaosHelp, chaosKeysHelp)
		}
		return nil, err
	}
	if c.target == "" {
		return nil, errors.New("chaos: missing --target, such as --target 127.0.0.1:8080 (see pulse chaos --help)")
	}
	return c, nil
}

// runChaos is "pulse chaos": the fault proxy of package chaos, driven by an
// HTTP control endpoint and, in a terminal, by keys. Every action is
// logged on stderr with its time.
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseChaosFlags(args, stdout)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	proxy, err := chaos.Listen(cfg.listen, cfg.target)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer proxy.Close()
	proxy.SetLogf(func(format string, args ...any) { logger.Info(fmt.Sprintf(format, args...)) })
	ln, err := net.Listen("tcp", cfg.control)
	if err != nil {
		return fmt.Errorf("chaos: control: %w", err)
	}
	ctl := &chaosControl{proxy: proxy, log: logger}
	srv := &http.Server{Handler: ctl.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	serveDone := goResult(func() error { return srv.Serve(ln) })
	logger.Info("listening", "proxy", proxy.Addr(), "target", cfg.target, "control", "http://"+ln.Addr().String())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.keys.value(isTerminal(commandStdin)) {
		fmt.Fprintln(stdout, chaosKeysHelp)
		in := newLines(commandStdin)
		defer in.stop()
		keysDone := goResult(func() error { ctl.keys(ctx, in, cancel, stdout); return nil })
		defer func() { <-keysDone }()
	}
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	srv.Shutdown(shutdownCtx)
	if err := <-serveDone; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("chaos: control: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// chaosControl applies faults to the proxy on command.
type chaosControl struct {
	proxy *chaos.Proxy
	log   *slog.Logger
}

// fault is one command, from the control endpoint or a key.
type fault struct {
	verb  string          // blackhole, heal, delay, limit, cut, close
	dir   chaos.Direction // blackhole, limit
	delay time.Duration   // delay
	rate  int             // limit, bytes per second
	link  string          // one link's client address; empty means all
}

// apply runs f and says what it did.
func (c *chaosControl) apply(f fault) (string, error) {
	if f.link != "" {
		l := c.proxy.Link(f.link)
		if l == nil {
			return "", errNoLink
		}
		return c.applyLink(f, l)
	}
	switch f.verb {
	case "blackhole":
		c.proxy.Blackhole(f.dir)
	case "heal":
		c.proxy.Heal()
	case "delay":
		c.proxy.Delay(f.delay)
	case "limit":
		c.proxy.Limit(f.dir, f.rate)
	case "cut", "close":
		for _, l := range c.proxy.Links() {
			c.applyLink(f, l)
		}
	default:
		return "", fmt.Errorf("unknown fault %q", f.verb)
	}
	return fmt.Sprintf("%s on all links (%d open)", f.verb, len(c.proxy.Links())), nil
}

var errNoLink = errors.New("no open link with that client address (see GET /links)")

func (c *chaosControl) applyLink(f fault, l *chaos.Link) (string, error) {
	switch f.verb {
	case "blackhole":
		l.Blackhole(f.dir)
	case "heal":
		l.Heal()
	case "delay":
		l.Delay(f.delay)
	case "limit":
		l.Limit(f.dir, f.rate)
	case "cut":
		l.Cut()
	case "close":
		l.Close()
	default:
		return "", fmt.Errorf("unknown fault %q", f.verb)
	}
	return fmt.Sprintf("%s on %s", f.verb, l.ClientAddr()), nil
}

// parseDirection reads both, up or down (and upstream, downstream).
func parseDirection(s string) (chaos.Direction, error) {
	switch s {
	case "", "both":
		return chaos.DirectionBoth, nil
	case "up", "upstream":
		return chaos.DirectionUpstream, nil
	case "down", "downstream":
		return chaos.DirectionDownstream, nil
	}
	return 0, fmt.Errorf("direction %q: want both, up or down", s)
}

// parseRate reads bytes per second: 2048, 64k, 1m.
func parseRate(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(strings.ToLower(s), "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(strings.ToLower(s), "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("rate %q: want bytes per second, such as 2048, 64k or 1m", s)
	}
	return n * mult, nil
}
