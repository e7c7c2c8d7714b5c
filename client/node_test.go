package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
)

// A real pulse node for socket tests: a pulse.Server with a hub.Hub
// behind an http.Server on a TCP listener. kill ends it abruptly; start
// brings it back on the same address, with the same broker (a node
// restart with a shared broker) or a new one (a restart of the memory
// broker: new epochs).

type node struct {
	t      *testing.T
	addr   string
	opts   pulse.Options
	broker *hub.Memory
	hub    *hub.Hub

	// The current life, if up.
	ln     *trackListener
	http   *http.Server
	cancel context.CancelFunc
	done   chan struct{} // closed when the life's goroutines ended
}

func startNode(t *testing.T, addr string, opts pulse.Options, broker *hub.Memory) *node {
	t.Helper()
	n := &node{t: t, addr: addr, opts: opts, broker: broker}
	n.start()
	t.Cleanup(n.kill)
	return n
}

// url is the node's pulse.v1 endpoint.
func (n *node) url() string { return "ws://" + n.addr + "/ws" }

// start brings the node up on its address.
func (n *node) start() {
	n.t.Helper()
	ln, err := net.Listen("tcp", n.addr)
	if err != nil {
		n.t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	n.ln = &trackListener{Listener: ln}
	opts := n.opts
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.DrainWindow = 10 * time.Millisecond
	srv, err := pulse.NewServer(&opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.hub = hub.New(&hub.Options{Broker: n.broker, Logger: opts.Logger})
	mux := http.NewServeMux()
	mux.Handle("/ws", srv.Handler(n.hub))
	n.http = &http.Server{Handler: mux}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(ctx) })
	wg.Go(func() { n.http.Serve(n.ln) })
	go func() {
		wg.Wait()
		close(n.done)
	}()
}

// kill ends the node abruptly: the listener and every socket are closed
// at once, with a reset, and no close frame is sent.
func (n *node) kill() {
	if n.http == nil {
		return
	}
	n.http.Close()
	n.ln.resetAll()
	n.cancel()
	<-n.done
	n.http = nil
}

// publish publishes {"n":i} for i in [from, from+count) from the server.
func (n *node) publish(channel string, from, count int) {
	n.t.Helper()
	for i := from; i < from+count; i++ {
		data := fmt.Appendf(nil, `{"n":%d}`, i)
		if _, err := n.broker.Publish(context.Background(), channel, data, hub.PublishOptions{}); err != nil {
			n.t.Fatal(err)
		}
	}
}

// trackListener remembers every connection it accepted.
type trackListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// resetAll closes every accepted connection with a reset.
func (l *trackListener) resetAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	l.conns = nil
}
