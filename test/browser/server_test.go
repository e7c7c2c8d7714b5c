package browser

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/chaos"
	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/web"
)

// The liveness rule of the test server: a silent peer is dead after
// interval + timeout, so cut-offs are noticed in about two seconds.
const (
	testInterval = time.Second
	testTimeout  = time.Second
	testBound    = testInterval + testTimeout
)

// server is a pulse server wired as `pulse serve` wires it, on loopback.
type server struct {
	addr string // host:port
}

// url is the server's address for path.
func (s *server) url(path string) string { return "http://" + s.addr + path }

// startServer runs the server under test until the test ends: the binary
// named by PULSE_BIN (`pulse serve`) if set, else in process a
// pulse.Server with the hub at /ws, the demos at /, and web.Run driving
// them.
func startServer(t *testing.T) *server {
	t.Helper()
	if bin := os.Getenv("PULSE_BIN"); bin != "" {
		return startBinary(t, bin)
	}
	srv, err := pulse.NewServer(&pulse.Options{
		Interval: testInterval, Timeout: testTimeout, DrainWindow: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	broker := hub.NewMemory(nil)
	h := hub.New(&hub.Options{Broker: broker, Authorize: serverOnlyDollar})
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv.Handler(h))
	mux.Handle("/", web.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 3)
	go func() { done <- srv.Run(ctx) }()
	go func() { done <- web.Run(ctx, h) }()
	go func() { done <- ignoreClosed(httpSrv.Serve(ln)) }()
	t.Cleanup(func() {
		cancel()
		errs := []error{<-done, <-done}
		httpSrv.Shutdown(context.Background())
		errs = append(errs, <-done, broker.Close())
		if err := errors.Join(errs...); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return &server{addr: ln.Addr().String()}
}

// serverOnlyDollar is the permission rule of `pulse serve`: clients may not
// publish to channels starting with $.
func serverOnlyDollar(_ hub.Peer, action hub.Action, channel string) error {
	if action == hub.ActionPublish && strings.HasPrefix(channel, "$") {
		return errors.New("channels starting with $ are published by the server only")
	}
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// startProxy puts a chaos proxy in front of s, on another loopback address
// (another origin for the browser), until the test ends.
func startProxy(t *testing.T, s *server) (*chaos.Proxy, *server) {
	t.Helper()
	p, err := chaos.Listen("127.0.0.2:0", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, &server{addr: p.Addr()}
}
