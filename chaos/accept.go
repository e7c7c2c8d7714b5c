package chaos

import (
	"context"
	"net"
	"slices"
)

// acceptLoop accepts clients until the listener is closed. Each client's
// target is dialed here, in turn, so links are added in accept order.
func (p *Proxy) acceptLoop(ctx context.Context) {
	for {
		client, err := p.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() == nil {
				p.log("accept: %v", err)
			}
			return
		}
		p.open(ctx, client)
	}
}

// open dials the target for client and starts the link. If the dial
// fails, the client is reset, as if the target had refused it.
func (p *Proxy) open(ctx context.Context, client *net.TCPConn) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	p.mu.Lock()
	d := net.Dialer{LocalAddr: p.source}
	p.mu.Unlock()
	conn, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		p.log("dial %s: %v", p.target, err)
		client.SetLinger(0)
		client.Close()
		return
	}
	l := newLink(p, client, conn.(*net.TCPConn))
	if !p.add(l) {
		l.shut()
		return
	}
	p.log("%s: accepted", l.clientAddr)
}

// add registers l with the faults of the proxy and starts it. It returns
// false if the proxy is closed.
func (p *Proxy) add(l *Link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	l.up.inherit(&p.up)
	l.down.inherit(&p.down)
	p.links = append(p.links, l)
	p.accepted++
	p.broadcast()
	p.wg.Go(l.run)
	return true
}

// remove drops l from the open links.
func (p *Proxy) remove(l *Link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.links = slices.DeleteFunc(p.links, func(x *Link) bool { return x == l })
}

// broadcast wakes every WaitLinks. The caller holds mu.
func (p *Proxy) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// log reports through the Logf set by SetLogf, if any. The caller must
// not hold mu.
func (p *Proxy) log(format string, args ...any) {
	p.mu.Lock()
	logf := p.logf
	p.mu.Unlock()
	if logf != nil {
		logf(format, args...)
	}
}
