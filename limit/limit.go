// Package limit bounds the connections a pulse endpoint takes, before the
// upgrade: how many one source address holds, how many are open in all,
// and how fast upgrades are admitted (admission control, so that after a
// restart thousands of clients come back at the pace the server can
// take). Wrap any pulse.Handler:
//
//	lim := limit.New(nil) // the defaults below
//	mux.Handle("/ws", srv.Handler(lim.Handler(h)))
//
// Every refusal is HTTP 503 with a JSON reason and a Retry-After header
// (jittered for admission control, so refused clients do not return in
// step); the server's refusal log records it with the remote address, and
// Options.Refused counts it (package prom exports the count).
package limit

import (
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulse-go/pulse"
)

// Defaults of Options.
const (
	DefaultPerAddress  = 100
	DefaultTotal       = 50_000
	DefaultUpgradeRate = 1000
	DefaultRetryWindow = 10 * time.Second
)

// Reasons of refusals, as Options.Refused receives them.
const (
	ReasonUpgradeRate = "upgrade_rate"        // over Options.UpgradeRate
	ReasonPerAddress  = "address_connections" // over Options.PerAddress
	ReasonTotal       = "total_connections"   // over Options.Total
)

// Reasons lists every reason, so that a counter can create its series.
func Reasons() []string { return []string{ReasonUpgradeRate, ReasonPerAddress, ReasonTotal} }

// Options configures a Limiter. Nil means defaults.
type Options struct {
	// PerAddress is how many connections one source IP address may hold
	// open. The address is the TCP peer's: behind a proxy every client
	// shares the proxy's, so raise this there. Zero means 100.
	PerAddress int
	// Total is how many connections the handler may hold open in all.
	// Zero means 50,000.
	Total int
	// UpgradeRate is how many upgrades per second are admitted, with a
	// burst of a tenth of a second's worth (at least 1). Zero means 1000.
	UpgradeRate float64
	// RetryWindow bounds the Retry-After a refusal sends. Admission
	// control draws it at random between 1s and the time the upgrade rate
	// needs to admit the upgrades refused over the last second or so, at
	// most RetryWindow: refused clients come back spread over the time
	// the server needs to take them. The connection limits send
	// RetryWindow. Zero means 10s.
	RetryWindow time.Duration
	// Refused is called with the reason of each refusal, to count it; it
	// must not block. Nil means none.
	Refused func(reason string)
}

// Limiter applies one set of limits to the handlers it wraps. All its
// methods may be called concurrently.
type Limiter struct {
	// Set by New, never changes.
	opts     Options
	upgrades *rate.Limiter // safe for concurrent use

	mu     sync.Mutex     // guards the fields below
	counts map[string]int // open connections by source address, absent when none
	total  int
	demand refusalWindow // upgrades refused for the rate, lately

	admitted atomic.Int64 // upgrades admitted since New; written under mu
}

// refusalWindow counts refusals in the current second and the one before.
type refusalWindow struct {
	since         time.Time // start of the current second
	now, previous int
}

// add counts a refusal at t and returns the refusals of the last second
// or two.
func (w *refusalWindow) add(t time.Time) int {
	switch d := t.Sub(w.since); {
	case d >= 2*time.Second:
		w.since, w.previous, w.now = t, 0, 0
	case d >= time.Second:
		w.since, w.previous, w.now = t, w.now, 0
	}
	w.now++
	return w.now + w.previous
}

// New returns a Limiter configured by opts.
func New(opts *Options) *Limiter {
	var o Options
	if opts != nil {
		o = *opts
	}
	setDefault(&o.PerAddress, DefaultPerAddress)
	setDefault(&o.Total, DefaultTotal)
	setDefault(&o.UpgradeRate, DefaultUpgradeRate)
	setDefault(&o.RetryWindow, DefaultRetryWindow)
	if o.Refused == nil {
		o.Refused = func(string) {}
	}
	burst := max(1, int(o.UpgradeRate/10))
	return &Limiter{opts: o, upgrades: rate.NewLimiter(rate.Limit(o.UpgradeRate), burst), counts: make(map[string]int)}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Count returns how many connections the limiter counts, in all and from
// addr (an IP address).
func (l *Limiter) Count(addr string) (total, fromAddr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.counts[addr]
}

// Handler returns h behind the limiter: an upgrade request over a limit is
// refused before h sees it.
func (l *Limiter) Handler(h pulse.Handler) pulse.Handler {
	limited := &handler{l: l, h: h}
	if sh, ok := h.(pulse.SubprotocolHandler); ok {
		return subprotocolHandler{limited, sh.Subprotocol()}
	}
	return limited
}

// refuse counts a refusal and makes its answer.
func (l *Limiter) refuse(reason, text string, retry time.Duration) *pulse.HTTPError {
	l.opts.Refused(reason)
	return &pulse.HTTPError{Status: http.StatusServiceUnavailable, Reason: text, RetryAfter: retry}
}

// admit checks the upgrade rate, then takes a place for a connection from
// addr, or refuses.
func (l *Limiter) admit(addr string) *pulse.HTTPError {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.upgrades.Allow() {
		return l.refuse(ReasonUpgradeRate, "too many connections arriving; try again later", l.retryAfterLocked())
	}
	if l.total >= l.opts.Total {
		return l.refuse(ReasonTotal, "the server holds all the connections it takes; try again later", l.opts.RetryWindow)
	}
	if l.counts[addr] >= l.opts.PerAddress {
		return l.refuse(ReasonPerAddress, "too many connections from your address", l.opts.RetryWindow)
	}
	l.total++
	l.counts[addr]++
	l.admitted.Add(1)
	return nil
}

// Admitted returns how many upgrade requests the limiter has admitted
// (passed every limit) since New. pulse serve exports it as the counter
// pulse_upgrades_admitted_total, so that a load test can check the rate of
// upgrades the server let through against UpgradeRate.
func (l *Limiter) Admitted() int64 { return l.admitted.Load() }

// retryAfterLocked draws the Retry-After of an upgrade refused for the
// rate (see Options.RetryWindow).
func (l *Limiter) retryAfterLocked() time.Duration {
	demand := l.demand.add(time.Now())
	spread := time.Duration(float64(demand) / l.opts.UpgradeRate * float64(time.Second))
	spread = min(max(spread, time.Second), max(l.opts.RetryWindow, time.Second))
	return time.Second + rand.N(spread-time.Second+1)
}

// release gives back the place of a connection from addr.
func (l *Limiter) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.counts[addr]--; l.counts[addr] <= 0 {
		delete(l.counts, addr)
	}
}

// sourceAddr is the IP address of a request's TCP peer.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// take counts a connection from addr whatever the limits.
func (l *Limiter) take(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.counts[addr]++
}
