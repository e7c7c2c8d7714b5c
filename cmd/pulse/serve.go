package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/auth"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/limit"
	"github.com/pulse-go/pulse/prom"
	"github.com/pulse-go/pulse/web"
)

// Bounds of the HTTP side of a drain.
const (
	// shutdownGrace is how long plain HTTP requests, and upgrades under
	// way, may take to finish once every WebSocket has been closed.
	shutdownGrace = 5 * time.Second
	// readHeaderTimeout bounds a request's headers, so a client that
	// never finishes its handshake cannot hold a goroutine; the default of
	// --handshake-timeout.
	readHeaderTimeout = 10 * time.Second
	// readTimeout and writeTimeout bound a plain request's body and its
	// response. A WebSocket outlives them: its upgrade clears the
	// deadlines they set on the connection.
	readTimeout  = 30 * time.Second
	writeTimeout = 30 * time.Second
	// idleTimeout closes a keep-alive connection with no request in flight;
	// longer than the 60 s idle cut of ALB and nginx, so that a proxy never
	// reuses a connection the server has just closed.
	idleTimeout = 120 * time.Second
)

// serve is "pulse serve": it listens, serves until ctx ends, then drains.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stdout)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	d, err := newDaemon(cfg, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// No TCP keep-alive: a WebSocket connection has pulse's heartbeats, an
	// idle HTTP one the server's IdleTimeout, and the keep-alive's socket
	// options cost every accepted connection several system calls.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		d.broker.Close()
		return fmt.Errorf("serve: %w", err)
	}
	tln, err := cfg.tls.listener(ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}
	ln = tln
	printWelcome(stdout, ln.Addr(), d.webScheme, d.wsScheme)
	return d.run(ctx, ln)
}

// printWelcome tells the operator where to point a browser and clients,
// and who can reach the server.
func printWelcome(w io.Writer, addr net.Addr, web, ws string) {
	base := baseURL(addr)
	fmt.Fprintf(w, "pulse serve: open %s://%s/ in a browser; demos at /chat/, /dashboard/, /game/\n", web, base)
	fmt.Fprintf(w, "  pulse.v1 %[2]s://%[1]s/ws   echo %[2]s://%[1]s/echo   metrics %[3]s://%[1]s/metrics\n", base, ws, web)
	tcp, _ := addr.(*net.TCPAddr)
	switch {
	case tcp != nil && tcp.IP.IsLoopback():
		fmt.Fprintf(w, "  listening on %s: this machine only; --addr :%d accepts other machines too\n", addr, tcp.Port)
	case tcp != nil && tcp.IP.IsUnspecified():
		fmt.Fprintf(w, "  listening on %s: every interface, other machines included\n", addr)
	default:
		fmt.Fprintf(w, "  listening on %s\n", addr)
	}
}

// baseURL is the host:port a browser on this machine reaches addr at:
// localhost for a loopback or wildcard address.
func baseURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if tcp.IP.IsLoopback() || tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return tcp.String()
}

// daemon is one running "pulse serve": a pulse.Server and the HTTP server
// in front of it.
type daemon struct {
	// Set by newDaemon, never changes.
	log         *slog.Logger
	pulse       *pulse.Server
	hub         *hub.Hub
	limiter     *limit.Limiter // bounds the WebSocket connections of /ws and /echo
	verifier    *auth.Verifier // of tokens; nil when anonymous
	broker      serveBroker    // closed by run, after the drain
	apiKey      string
	checkOrigin func(*http.Request) bool // --allow-origin's rule
	http        *http.Server
	drainWindow time.Duration // for the log
	webScheme   string        // https with --tls-cert, else http
	wsScheme    string        // wss with --tls-cert, else ws

	draining atomic.Bool // set once run's context has ended; read by /healthz
	handlers inflight    // every HTTP handler, hijacked ones included
	refusals refusalLog  // requests refused before the library sees them
}

// newDaemon builds the servers cfg describes; nothing runs yet.
func newDaemon(cfg *serveConfig, logger *slog.Logger) (*daemon, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	opts := cfg.options(logger, prom.New(reg))
	srv, err := pulse.NewServer(&opts)
	if err != nil {
		return nil, err
	}
	broker, err := newServeBroker(cfg, logger)
	if err != nil {
		return nil, err
	}
	broker.register(reg)
	verifier, err := cfg.auth.verifier(context.Background(), logger) // the first JWKS fetch is bounded by its client's timeout
	if err != nil {
		broker.Close()
		return nil, err
	}
	refused := prom.Refusals(reg, append(limit.Reasons(), hub.Reasons()...)...)
	h := hub.New(&hub.Options{
		Broker:       broker.Broker, // not the wrapper: the hub finds hub.PresenceBroker by type assertion
		Verifier:     hubVerifier(verifier),
		Authorize:    serverOnlyChannels,
		PublishRate:  cfg.limits.publishRate,
		PublishBurst: cfg.limits.publishBurst,
		Refused:      refused,
		Logger:       logger,
	})
	d := &daemon{log: logger, pulse: srv, hub: h, broker: broker, verifier: verifier, limiter: cfg.limits.limiter(refused),
		apiKey: cfg.apiKey, checkOrigin: opts.CheckOrigin, drainWindow: opts.DrainWindow}
	d.webScheme, d.wsScheme = cfg.tls.schemes()
	d.refusals = newRefusalLog(logger)
	d.http = &http.Server{
		Handler:           d.handlers.track(d.routes(reg)),
		ReadHeaderTimeout: cfg.limits.handshakeTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       cfg.limits.idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return d, nil
}

// serverOnlyChannels is the permission rule of pulse serve: clients may
// subscribe to any channel and publish to any whose name does not start
// with "$"; those are published by the server only.
func serverOnlyChannels(_ hub.Peer, action hub.Action, channel string) error {
	if action == hub.ActionPublish && strings.HasPrefix(channel, "$") {
		return errors.New("channels starting with $ are published by the server only")
	}
	return nil
}

// run serves on ln until ctx ends, then shuts down, and returns once every
// goroutine it started has ended.
func (d *daemon) run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pulseDone := goResult(func() error { return d.pulse.Run(ctx) })
	demosDone := goResult(func() error { return web.Run(ctx, d.hub) })
	keysDone := goResult(func() error { return refreshKeys(ctx, d.verifier, d.log) })
	serveDone := goResult(func() error {
		defer cancel() // a listener that fails shuts the server down too
		return d.http.Serve(ln)
	})
	d.log.Info("listening", "addr", ln.Addr().String(), "url", d.webScheme+"://"+baseURL(ln.Addr())+"/")
	<-ctx.Done()
	if err := errors.Join(d.shutdown(pulseDone, serveDone), <-demosDone, <-keysDone, d.broker.Close()); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	d.log.Info("stopped")
	return nil
}

// shutdown drains the server once run's context has ended: the listener
// closes at once, pulse closes every WebSocket with CloseServiceRestart
// spread over the drain window (http.Server.Shutdown never touches hijacked
// connections), and plain HTTP requests and upgrade handlers still
// finishing then get shutdownGrace. It joins the goroutines of
// Run (pulseDone) and Serve (serveDone).
func (d *daemon) shutdown(pulseDone, serveDone <-chan error) error {
	d.draining.Store(true)
	d.log.Info("draining", "connections", d.pulse.Len(), "window", d.drainWindow)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := goResult(func() error { return d.http.Shutdown(httpCtx) })

	pulseErr := <-pulseDone
	grace := time.AfterFunc(shutdownGrace, stopHTTP)
	defer grace.Stop()
	return errors.Join(pulseErr, d.finishHTTP(<-httpDone), ignoreClosed(<-serveDone), d.handlers.wait(httpCtx))
}

// finishHTTP ends the HTTP side after Shutdown returned err: a Shutdown
// that ran out of grace leaves connections open, which Close then cuts.
func (d *daemon) finishHTTP(err error) error {
	if err == nil {
		return nil
	}
	d.http.Close()
	return fmt.Errorf("http shutdown: %w", err)
}

// ignoreClosed drops the error Serve always returns after Shutdown.
func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("http serve: %w", err)
}
