package chaos

import "time"

// Direction names which way of a link a fault applies to. The zero value
// is DirectionBoth.
type Direction int

const (
	// DirectionBoth is client to target and target to client.
	DirectionBoth Direction = iota
	// DirectionUpstream is client to target.
	DirectionUpstream
	// DirectionDownstream is target to client.
	DirectionDownstream
)

// String returns "both", "upstream" or "downstream".
func (d Direction) String() string {
	switch d {
	case DirectionUpstream:
		return "upstream"
	case DirectionDownstream:
		return "downstream"
	}
	return "both"
}

// pick returns the gates d names. Values other than DirectionUpstream and
// DirectionDownstream mean DirectionBoth.
func pick(d Direction, up, down *gate) []*gate {
	switch d {
	case DirectionUpstream:
		return []*gate{up}
	case DirectionDownstream:
		return []*gate{down}
	}
	return []*gate{up, down}
}

// Blackhole silently partitions every current link in direction d, and
// every link accepted later, until Heal. See Link.Blackhole.
func (p *Proxy) Blackhole(d Direction) {
	p.mu.Lock()
	for _, g := range pick(d, &p.up, &p.down) {
		g.hold()
	}
	for _, l := range p.links {
		l.hold(d)
	}
	p.mu.Unlock()
	p.log("blackhole %v, all links", d)
}

// Heal undoes Blackhole, Delay and Limit for the proxy and every link,
// including faults set on a single link.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.up.heal()
	p.down.heal()
	for _, l := range p.links {
		l.heal()
	}
	p.mu.Unlock()
	p.log("heal, all links")
}

// Delay holds every chunk forwarded on every current and later link for
// d before it is written. Zero removes the delay. See Link.Delay.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.up.setDelay(d)
	p.down.setDelay(d)
	for _, l := range p.links {
		l.setDelay(d)
	}
	p.mu.Unlock()
	p.log("delay %v, all links", d)
}
