package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// ErrClosed is returned by WaitLinks once the proxy is closed.
var ErrClosed = errors.New("chaos: proxy closed")

// dialTimeout bounds each dial of the target. Dials are serial, so a
// target that does not answer delays later accepts by at most this much.
const dialTimeout = 5 * time.Second

// Proxy forwards TCP connections from its listener to a target address
// and injects faults on command. All methods may be called from any
// goroutine. Faults set on the proxy apply to every current link and to
// links accepted later; faults set on a Link apply to that link only.
type Proxy struct {
	// Set at Listen, never changes.
	ln     *net.TCPListener
	target string
	cancel context.CancelFunc // cancels dials in progress
	wg     sync.WaitGroup     // the accept loop and every link's run

	mu sync.Mutex // never held while blocking or logging

	// Guarded by mu.
	up, down gate                             // faults new links start with
	links    []*Link                          // open links, in accept order
	accepted int                              // links accepted in total
	changed  chan struct{}                    // closed and replaced when accepted or closed changes
	closed   bool                             // Close was called
	logf     func(format string, args ...any) // nil: log nothing
	source   *net.TCPAddr                     // the address dials of the target come from; nil: the system's choice
}

// Listen starts a proxy listening on addr (e.g. "127.0.0.1:0") that
// forwards each accepted connection to target. Accepting and forwarding
// run in goroutines that Close joins.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:      ln.(*net.TCPListener),
		target:  target,
		cancel:  cancel,
		changed: make(chan struct{}),
	}
	p.wg.Go(func() { p.acceptLoop(ctx) })
	return p, nil
}

// Addr returns the listener address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDialFrom makes the proxy dial its target from ip, a local address
// (such as 127.0.0.3, so that proxies on several loopback addresses do not
// share one address's ports toward the target). Nil, the default, leaves
// it to the system. It applies to links accepted from then on.
func (p *Proxy) SetDialFrom(ip net.IP) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.source = nil
	if ip != nil {
		p.source = &net.TCPAddr{IP: ip}
	}
}

// SetLogf makes the proxy report each accept, fault and link end through
// f, which may be called from any goroutine. Nil, the default, logs nothing.
func (p *Proxy) SetLogf(f func(format string, args ...any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf = f
}

// Close closes the listener and every link, and returns after every
// goroutine of the proxy has exited. Later calls return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	links := slices.Clone(p.links)
	if first {
		p.broadcast()
	}
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, l := range links {
		l.shut()
	}
	p.wg.Wait()
	if !first {
		return nil
	}
	return err
}

// Links returns the open links, in accept order. A link stays listed
// until its Done channel is closed.
func (p *Proxy) Links() []*Link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.links)
}

// Link returns the open link whose client address is clientAddr (the
// LocalAddr().String() of the connection the client dialed), or nil.
func (p *Proxy) Link(clientAddr string) *Link {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		if l.clientAddr == clientAddr {
			return l
		}
	}
	return nil
}

// WaitLinks blocks until n links have been accepted in total since
// Listen, then returns the open links. It returns ctx.Err() if ctx ends
// first and ErrClosed if the proxy is closed first.
func (p *Proxy) WaitLinks(ctx context.Context, n int) ([]*Link, error) {
	for {
		p.mu.Lock()
		accepted, closed, changed := p.accepted, p.closed, p.changed
		links := slices.Clone(p.links)
		p.mu.Unlock()
		switch {
		case accepted >= n:
			return links, nil
		case closed:
			return nil, ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
