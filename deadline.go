package pulse

import "time"

// A connection's own deadline, kept by the server's timing wheel: a
// session that must act at a time (a token's expiry) holds no runtime
// timer, only this pointer, and the wheel checks it on the connection's
// turns, which it brings forward when the deadline comes sooner.

// connDeadline is a deadline set by OnDeadline; never changed once set.
type connDeadline struct {
	at time.Duration // on the server's clock
	f  func()
}

// OnDeadline has f called once, from the server's timing wheel, at the
// wheel's first tick at or after t (a t already past: at the next tick),
// unless OnDeadline is called again first, which replaces it, or the
// connection has ended. A zero t or a nil f cancels it. f must not block;
// it may call Close. OnDeadline may be called from any goroutine.
func (c *Conn) OnDeadline(t time.Time, f func()) {
	if t.IsZero() || f == nil {
		c.deadline.Store(nil)
		return
	}
	w := c.srv.wheel
	at := w.since() + time.Until(t)
	c.deadline.Store(&connDeadline{at: at, f: f})
	w.hurry(&c.node, w.ceil(max(at, 0)))
}

// fireDeadline calls the deadline's f if it is due at now, and returns the
// tick the connection needs a turn at for a deadline still ahead, or -1.
// The wheel's goroutine only.
func (c *Conn) fireDeadline(now time.Duration) int64 {
	d := c.deadline.Load()
	switch {
	case d == nil:
		return -1
	case now < d.at:
		return c.srv.wheel.ceil(d.at)
	case c.deadline.CompareAndSwap(d, nil): // not replaced meanwhile
		d.f()
	}
	return -1
}
