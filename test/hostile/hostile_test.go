//go:build linux

package hostile

import (
	"cmp"
	"testing"
	"time"
)

// Bounds of every case.
const (
	// numBystanders keep measuring while a case runs.
	numBystanders = 8
	// calmFor is how long the bystanders are measured before the attack.
	calmFor = time.Second
	// p99Bound is the bystanders' round-trip p99 a case may not exceed.
	// Generous: the machine is shared, the attackers run under -race in
	// this process, and the point is that no attack starves bystanders.
	p99Bound = time.Second
)

// attackCase is one hostile client pattern. attack runs it against s, and
// checks that the attacker got the documented answer.
type attackCase struct {
	name   string
	flags  []string // of pulse serve
	attack func(t *testing.T, s *server)
	p99    time.Duration // the bystanders' bound; zero means p99Bound
}

func TestHostileClients(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runCase(t, c) })
	}
}

// runCase measures the bystanders calm, runs the attack beside them, then
// checks the server and waits for it to calm down.
func runCase(t *testing.T, c attackCase) {
	s := startServer(t, c.flags...)
	b := startBystanders(t, s, numBystanders)
	time.Sleep(calmFor) // the bystanders measure meanwhile
	before, _ := b.take(t)
	calm := s.level(t)

	start := time.Now()
	c.attack(t, s)
	took := time.Since(start)
	during, n := b.take(t)
	peak := s.level(t)
	if !s.healthy() {
		t.Fatal("the server is not healthy after the attack")
	}
	bound := cmp.Or(c.p99, p99Bound)
	if during > bound {
		t.Errorf("bystanders' p99 %v during the attack, over %v", during, bound)
	}
	after := s.awaitCalm(t, calm)
	t.Logf("%s: attack %v; bystander p99 %v before, %v during (%d round trips); server calm %v, at the end %v, after %v",
		c.name, took.Round(time.Millisecond), before.Round(time.Microsecond), during.Round(time.Microsecond), n, calm, peak, after)
}
