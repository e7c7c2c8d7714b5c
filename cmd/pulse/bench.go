package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// "pulse bench SCENARIO [flags] URL" measures a server: how many idle
// connections it holds and at what cost, how fast it upgrades, its echo
// round trip under load, its fan-out, and how a reconnect storm goes.
// Every run is bounded by --duration and stops by itself.

// benchScenarios maps each scenario's name to its run and a summary.
var benchScenarios = map[string]struct {
	summary string
	run     func(ctx context.Context, b *bench) (*benchResult, error)
	raw     bool // has a raw mode, for servers that do not speak pulse.v1
}{
	"idle":     {"hold N connections with heartbeats; server RSS per connection and CPU per 1,000 heartbeats (--pid)", runIdle, true},
	"upgrades": {"open and close connections as fast as the server takes them; handshake latency", runUpgrades, true},
	"latency":  {"echo round trip percentiles under background load", runLatency, true},
	"fanout":   {"S subscribers in rooms of R, publishers at a total rate; delivery latency, lost, duplicated", runFanout, true},
	"storm":    {"N real clients, then a server restart or a network cut; time until they are back, lost messages", runStorm, false},
}

var benchOrder = []string{"idle", "upgrades", "latency", "fanout", "storm"}

// benchConfig is what the flags of "pulse bench" set.
type benchConfig struct {
	scenario    string
	url         string
	raw         bool
	n           int
	duration    time.Duration
	allowRemote bool
	pid         int
	metricsURL  string
	jsonOut     bool
	htmlFile    string
	concurrency int
	perProcess  int
	rate        float64
	subscribers int
	room        int
	publishers  int
	restartCmd  string
	chaos       bool
	baseline    bool
	// pacedProbes: latency probes pace themselves as pulse.v1 ones must,
	// in raw mode too (the baseline of a pulse.v1 run). Not a flag.
	pacedProbes bool
}

// Defaults of "pulse bench".
const (
	benchDefaultDuration = 10 * time.Second
	// benchCloseGrace is how long past --duration a run may take to close
	// its connections and write its report: the hard limit is the sum.
	benchCloseGrace = 5 * time.Second
	// benchFileReserve is the files a process keeps for itself beside its
	// connections: the binary, pipes, the metrics scrape.
	benchFileReserve = 256
	// maxAppPings is the most app pings a second one connection sends,
	// under a pulse server's default limit of 50 (--max-ping-rate).
	maxAppPings = 40
)

// parseBenchFlags parses "pulse bench SCENARIO [flags] URL"; the scenario
// and the URL may stand anywhere among the flags.
func parseBenchFlags(args []string, stdout io.Writer) (*benchConfig, error) {
	c := &benchConfig{}
	var rest []string
	for _, a := range args {
		_, known := benchScenarios[a]
		switch {
		case known && c.scenario == "":
			c.scenario = a
		case strings.Contains(a, "://") && c.url == "":
			c.url = a
		default:
			rest = append(rest, a)
		}
	}
	args = rest
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&c.raw, "raw", false, "plain WebSocket, for servers that do not speak pulse.v1 (idle, upgrades, latency on an echo endpoint,\nfanout on a broadcast endpoint: {room} in the URL stands for the room's number)")
	fs.IntVar(&c.n, "n", 100, "connections: held (idle), in the background (latency), clients (storm)")
	fs.DurationVar(&c.duration, "duration", benchDefaultDuration, "how long the run lasts, ramp included; a hard limit")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a target that is not on this machine (loopback)")
	fs.IntVar(&c.pid, "pid", 0, "the server's process `id`, when local: its RSS and CPU time are read from /proc")
	fs.StringVar(&c.metricsURL, "metrics", "", "the server's Prometheus `URL` (default: /metrics on the target's host, if it answers)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON instead of a table")
	fs.StringVar(&c.htmlFile, "html", "", "write a self-contained HTML report (histograms, timeline) to `file`")
	fs.IntVar(&c.concurrency, "concurrency", 32, "dials under way at once")
	fs.IntVar(&c.perProcess, "per-process", 0, "connections one process holds; more are spread over child processes\n(default: this process's file limit less 256)")
	fs.Float64Var(&c.rate, "rate", 100, "messages per second: background echoes (latency), publications in all (fanout, storm)")
	fs.IntVar(&c.subscribers, "subscribers", 100, "fanout: subscribers")
	fs.IntVar(&c.room, "room", 10, "fanout, storm: subscribers per channel")
	fs.IntVar(&c.publishers, "publishers", 1, "fanout: publishing connections")
	fs.StringVar(&c.restartCmd, "restart-cmd", "", "storm: shell command that restarts the server (after SIGTERM to --pid, if given)")
	fs.BoolVar(&c.chaos, "chaos", false, "storm: cut every connection through a chaos proxy instead of restarting the server")
	fs.BoolVar(&c.baseline, "baseline", false, "run the same scenario against the built-in gorilla chat-pattern server too (raw mode)")
	if err := parseFlags(fs, args, stdout, "URL"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printBenchScenarios(stdout)
		}
		return nil, err
	}
	switch {
	case c.scenario == "" && fs.NArg() > 0:
		c.scenario = fs.Arg(0) // unknown: validate says so
	case c.url == "":
		c.url = fs.Arg(0)
	}
	return c, c.validate()
}

func printBenchScenarios(w io.Writer) {
	fmt.Fprintln(w, "\nScenarios (pulse bench SCENARIO [flags] URL):")
	for _, name := range benchOrder {
		fmt.Fprintf(w, "  %-9s %s\n", name, benchScenarios[name].summary)
	}
}

// validate checks the scenario, the URL and the numbers.
func (c *benchConfig) validate() error {
	s, ok := benchScenarios[c.scenario]
	switch {
	case c.scenario == "":
		return fmt.Errorf("bench: missing scenario: one of %s (see pulse bench --help)", strings.Join(benchOrder, ", "))
	case !ok:
		return fmt.Errorf("bench: unknown scenario %q: one of %s", c.scenario, strings.Join(benchOrder, ", "))
	case c.raw && !s.raw:
		return fmt.Errorf("bench: %s has no raw mode; it needs a pulse.v1 server", c.scenario)
	case c.n < 1 || c.subscribers < 1 || c.room < 1 || c.publishers < 1 || c.concurrency < 1:
		return errors.New("bench: --n, --subscribers, --room, --publishers and --concurrency must be at least 1")
	case c.duration <= 0 || c.rate <= 0:
		return errors.New("bench: --duration and --rate must be positive")
	case c.baseline && !slices.Contains(baselineScenarios, c.scenario):
		return fmt.Errorf("bench: the baseline speaks no pulse.v1: --baseline works with %s", strings.Join(baselineScenarios, ", "))
	case c.scenario == "latency" && !c.raw && c.rate/float64(c.n) > maxAppPings:
		return fmt.Errorf("bench: --rate %g over --n %d is %g a second on each connection; a pulse server closes one that pings "+
			"more than 50 times a second (pulse serve --max-ping-rate): keep it under %d with more --n or a lower --rate",
			c.rate, c.n, c.rate/float64(c.n), maxAppPings)
	case c.scenario == "storm" && c.baseline && !c.chaos:
		return errors.New("bench: the storm's baseline is cut by the chaos proxy: --baseline works with --chaos")
	case c.restartCmd != "" && c.chaos:
		return errors.New("bench: --restart-cmd and --chaos are two ways to break a storm; give one")
	case c.scenario == "fanout" && c.raw && !strings.Contains(c.url, roomVar) && c.room != c.subscribers:
		return fmt.Errorf("bench: fanout --raw on a URL without %s has one room: give --room %d, as many as --subscribers, "+
			"or put %s in the URL where the room's number goes", roomVar, c.subscribers, roomVar)
	}
	if c.url == "" {
		return errors.New("bench: missing URL, such as ws://localhost:8080/ws (see pulse bench --help)")
	}
	if err := checkURL(c.url); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return c.checkTarget()
}

// checkTarget refuses a target that is not this machine, unless
// --allow-remote: a load test pointed at someone else's server by a typo
// is an attack.
func (c *benchConfig) checkTarget() error {
	u, _ := url.Parse(c.url) // checkURL parsed it
	if c.allowRemote || isLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("bench: %s is not on this machine; a load test of another machine needs --allow-remote", u.Host)
}

// bench is one run of a scenario: its configuration and where it reports.
type bench struct {
	cfg       *benchConfig
	progress  *progress
	stderr    io.Writer
	noMetrics bool // the target has no /metrics: the baseline
	// members, in the baseline's run, asks its child how many subscribers
	// its fan-out rooms hold.
	members func() (int, error)
}

// runBench is "pulse bench SCENARIO [flags] URL".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if os.Getenv(benchWorkerVar) != "" {
		return benchWorker(ctx, commandStdin, stdout)
	}
	cfg, err := parseBenchFlags(args, stdout)
	if err != nil {
		return err
	}
	// The hard limit: whatever a scenario does, the run ends by then.
	limit := cfg.duration + benchCloseGrace
	if cfg.baseline {
		limit = 2*limit + benchCloseGrace // the baseline's run, and its server's start
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	b := &bench{cfg: cfg, progress: newProgress(stderr, writerIsTerminal(stderr)), stderr: stderr}
	res, err := b.run(ctx)
	if err != nil {
		return err
	}
	if cfg.baseline {
		if res.Baseline, err = runBaseline(ctx, b); err != nil {
			return fmt.Errorf("bench: baseline: %w", err)
		}
	}
	return b.report(res, stdout)
}

// writerIsTerminal reports whether w is a terminal: the progress line
// goes there only.
func writerIsTerminal(w io.Writer) bool {
	r, ok := w.(io.Reader)
	return ok && isTerminal(r)
}

// run runs the scenario once against cfg.url.
func (b *bench) run(ctx context.Context) (*benchResult, error) {
	if err := b.checkFiles(); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := benchScenarios[b.cfg.scenario].run(ctx, b)
	b.progress.end()
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", b.cfg.scenario, err)
	}
	res.fill(b.cfg, start)
	return res, nil
}
