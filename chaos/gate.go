package chaos

import (
	"sync"
	"time"
)

// gate holds the faults of one direction of a link: whether it is
// blackholed and how long each chunk is held before it is written.
// The forwarding loop of that direction waits on it before every read
// and before every write, so a held gate stops both.
type gate struct {
	mu sync.Mutex

	// Guarded by mu.
	held   bool          // blackholed: read nothing, write nothing
	delay  time.Duration // added before each write
	rate   int           // bytes per second written; 0 means no limit
	opened chan struct{} // closed when held turns false; nil while open
}

// hold closes the gate. Calling it on a held gate does nothing.
func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		g.held = true
		g.opened = make(chan struct{})
	}
}

// heal opens the gate and clears its delay.
func (g *gate) heal() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delay = 0
	g.rate = 0
	if g.held {
		g.held = false
		close(g.opened)
		g.opened = nil
	}
}

// setDelay sets the delay added before each write.
func (g *gate) setDelay(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delay = d
}

// inherit copies the faults of from into g, which nobody else uses yet.
func (g *gate) inherit(from *gate) {
	from.mu.Lock()
	held, delay, rate := from.held, from.delay, from.rate
	from.mu.Unlock()
	g.setDelay(delay)
	g.setRate(rate)
	if held {
		g.hold()
	}
}

// state returns the current faults and, if held, a channel closed on heal.
func (g *gate) state() (held bool, opened <-chan struct{}, delay time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.opened, g.delay
}

// wait blocks while the gate is held. It returns false if stop was closed.
func (g *gate) wait(stop <-chan struct{}) bool {
	for {
		held, opened, _ := g.state()
		if !held {
			return !closed(stop)
		}
		select {
		case <-opened:
		case <-stop:
			return false
		}
	}
}

// pause sleeps for the current delay. It returns false if stop was closed.
func (g *gate) pause(stop <-chan struct{}) bool {
	_, _, delay := g.state()
	return wait(delay, stop)
}

// wait waits for d and reports true, or false as soon as stop is closed.
func wait(d time.Duration, stop <-chan struct{}) bool {
	if d <= 0 {
		return !closed(stop)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// closed reports whether c is closed, without blocking.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
