package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pulse-go/pulse/client"
	"golang.org/x/term"
)

// commandStdin is where "pulse connect" and "pulse chaos" read lines from.
// run's signature has no reader, so tests replace this variable instead.
var commandStdin io.Reader = os.Stdin

// connectConfig is what the flags of "pulse connect" set.
type connectConfig struct {
	url       string
	raw       bool
	channels  listFlag
	publishTo string
	name      string
	ping      time.Duration
	queue     int
	handshake time.Duration
	wait      time.Duration
	caFile    string      // --ca
	tls       *tls.Config // from caFile; nil for the system's roots
	token     string      // --token
}

// defaultWait is the default of --wait: how long "pulse connect" waits, at
// /quit or the end of its input, for acks (pulse.v1) or answers (plain
// WebSocket) before it closes.
const defaultWait = 10 * time.Second

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// parseConnectFlags parses "pulse connect [flags] URL"; the URL may come
// before or after the flags.
func parseConnectFlags(args []string, stdout io.Writer) (*connectConfig, error) {
	c := &connectConfig{}
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.BoolVar(&c.raw, "raw", false, "plain WebSocket: send lines as text messages, print what arrives; no pulse.v1\n(chosen by itself when the server does not speak pulse.v1)")
	fs.Var(&c.channels, "channel", "subscribe to `channel` at start; repeat for several")
	fs.StringVar(&c.publishTo, "publish", "", "`channel` that plain lines are published to (default: the first --channel)")
	fs.StringVar(&c.name, "name", "", "client `name` sent in the hello, shown in presence")
	fs.DurationVar(&c.ping, "ping", 5*time.Second, "in a terminal, measure the round trip this often; 0 turns it off")
	fs.IntVar(&c.queue, "queue", client.DefaultQueueSize, "publishes that may wait while offline before a publish fails")
	fs.DurationVar(&c.handshake, "handshake-timeout", client.DefaultHandshakeTimeout, "bound on a dial and the wait for the welcome")
	fs.StringVar(&c.caFile, "ca", "", "PEM `file` of the certificates to trust for a wss:// URL (a private CA, or the server's\nself-signed certificate) instead of the system's")
	fs.StringVar(&c.token, "token", os.Getenv("PULSE_TOKEN"), "signed `token` of a server that requires one (default $PULSE_TOKEN): sent in the hello,\nor as Authorization: Bearer with --raw")
	fs.DurationVar(&c.wait, "wait", defaultWait, "at /quit or the end of the input, how long to wait for the acks of the publishes\n(plain WebSocket: for an answer to every line sent) before closing")
	rest := args
	for i, a := range args {
		if strings.Contains(a, "://") {
			c.url = a
			rest = append(args[:i:i], args[i+1:]...)
			break
		}
	}
	if err := parseFlags(fs, rest, stdout, "URL"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "\nURL is a ws:// or wss:// endpoint: pulse.v1 (such as %s) or plain WebSocket.\nOn the prompt, %s\n", "ws://localhost:8080/ws", connectHelp)
		}
		return nil, err
	}
	if c.url == "" {
		c.url = fs.Arg(0)
	}
	if err := checkURL(c.url); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if c.caFile != "" {
		var err error
		if c.tls, err = client.LoadCA(c.caFile); err != nil {
			return nil, fmt.Errorf("connect: --ca: %w", err)
		}
	}
	if c.publishTo == "" && len(c.channels) > 0 {
		c.publishTo = c.channels[0]
	}
	return c, nil
}

// checkURL accepts ws:// and wss:// URLs with a host.
func checkURL(s string) error {
	if s == "" {
		return errors.New("missing URL, such as ws://localhost:8080/ws (see pulse connect --help)")
	}
	u, err := url.Parse(s)
	switch {
	case err == nil && (u.Scheme == "http" || u.Scheme == "https"):
		return fmt.Errorf("%s is an HTTP URL; a WebSocket URL starts with ws:// or wss://, such as ws%s", s, strings.TrimPrefix(s, "http"))
	case err != nil || (u.Scheme != "ws" && u.Scheme != "wss"):
		return fmt.Errorf("%q is not a WebSocket URL: it must start with ws:// or wss://, such as ws://localhost:8080/ws", s)
	case u.Host == "":
		return fmt.Errorf("%q has no host, such as ws://localhost:8080/ws", s)
	}
	return nil
}

// connect is "pulse connect [flags] URL": an interactive client for
// pulse.v1 endpoints and, with --raw or when the server does not speak
// pulse.v1, for plain WebSocket endpoints.
func connect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConnectFlags(args, stdout)
	if err != nil {
		return err
	}
	p := newPrinter(stdout, stderr, isTerminal(commandStdin))
	in := newLines(commandStdin)
	defer in.stop()
	var held []string
	if !cfg.raw {
		err = connectPulse(ctx, cfg, in, p)
		var np *notPulseError
		switch {
		case errors.As(err, &np) && np.accepted:
			p.status("%v; plain WebSocket mode (--raw skips this check)", np)
			held = np.held
		case errors.As(err, &np):
			p.status("%v: plain WebSocket mode", np)
			held = np.held
		default:
			return err
		}
	}
	return connectRaw(ctx, cfg, held, in, p)
}

// printer writes messages on stdout and status lines, stamped, on stderr,
// from any goroutine.
type printer struct {
	mu          sync.Mutex
	out, err    io.Writer
	interactive bool
}

func newPrinter(out, err io.Writer, interactive bool) *printer {
	return &printer{out: out, err: err, interactive: interactive}
}

func (p *printer) message(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

func (p *printer) status(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.err, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd())) // not /dev/null, which is a character device too
}

// lines reads r one line at a time on its own goroutine.
type lines struct {
	r    io.Reader
	c    chan string // closed at EOF or on a read error
	done chan struct{}
}

func newLines(r io.Reader) *lines {
	l := &lines{r: r, c: make(chan string), done: make(chan struct{})}
	go l.read()
	return l
}

func (l *lines) read() {
	defer close(l.c)
	sc := bufio.NewScanner(l.r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		select {
		case l.c <- sc.Text():
		case <-l.done:
			return
		}
	}
}

// stop ends the reader. A read in progress is interrupted through the
// reader's deadline where it has one; otherwise the goroutine ends at the
// reader's next line or EOF (tests close their pipe; os.Stdin, which Go
// opens blocking, ends with the process).
func (l *lines) stop() {
	close(l.done)
	if d, ok := l.r.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Now()) == nil {
		for range l.c {
		}
	}
}

// payload turns a line into message data: JSON as it is, anything else as
// a JSON string.
func payload(line string) json.RawMessage {
	if json.Valid([]byte(line)) {
		return json.RawMessage(line)
	}
	data, _ := json.Marshal(line)
	return data
}

const connectHelp = `commands: /sub CHANNEL, /unsub CHANNEL, /pub CHANNEL DATA, /to CHANNEL (where plain lines go),
          /ping, /state, /quit; //TEXT sends /TEXT; any other line is published (plain WebSocket: sent as text)`

// goResult runs f on a new goroutine; receiving from the channel joins it.
func goResult(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

// tokenFunc is the client's Options.Token for --token, nil without one.
func (c *connectConfig) tokenFunc() func(context.Context) (string, error) {
	if c.token == "" {
		return nil
	}
	return func(context.Context) (string, error) { return c.token, nil }
}
