package chaos

import "time"

// Bandwidth limits: a direction with a limit writes what it forwards in
// pieces of at most a tenth of a second's worth, each followed by the
// time it takes at that rate, so a busy link averages the rate and a
// single small message is not held for long.

// Limit caps direction d of every current link, and of every link
// accepted later, at bytesPerSecond. Zero removes the limit. See
// Link.Limit.
func (p *Proxy) Limit(d Direction, bytesPerSecond int) {
	p.mu.Lock()
	for _, g := range pick(d, &p.up, &p.down) {
		g.setRate(bytesPerSecond)
	}
	for _, l := range p.links {
		l.limit(d, bytesPerSecond)
	}
	p.mu.Unlock()
	p.log("limit %v to %d B/s, all links", d, bytesPerSecond)
}

// Limit caps direction d of the link at bytesPerSecond, like a slow
// network: bytes keep their order and none is lost, and the sender's
// buffers fill once it sends faster. Zero removes the limit; so does Heal.
func (l *Link) Limit(d Direction, bytesPerSecond int) {
	l.limit(d, bytesPerSecond)
	l.proxy.log("%s: limit %v to %d B/s", l.clientAddr, d, bytesPerSecond)
}

func (l *Link) limit(d Direction, bytesPerSecond int) {
	for _, g := range pick(d, &l.up, &l.down) {
		g.setRate(bytesPerSecond)
	}
}

// setRate sets the bandwidth limit; zero or less removes it.
func (g *gate) setRate(bytesPerSecond int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rate = max(bytesPerSecond, 0)
}

func (g *gate) limit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rate
}

// piece returns how many of n bytes to write next: all without a limit,
// else at most a tenth of a second's worth (at least one byte).
func (g *gate) piece(n int) int {
	if rate := g.limit(); rate > 0 {
		return min(n, max(1, rate/10))
	}
	return n
}

// throttle waits the time n bytes take at the limit. It returns false if
// stop was closed.
func (g *gate) throttle(stop <-chan struct{}, n int) bool {
	rate := g.limit()
	if rate <= 0 {
		return !closed(stop)
	}
	return wait(time.Duration(n)*time.Second/time.Duration(rate), stop)
}
