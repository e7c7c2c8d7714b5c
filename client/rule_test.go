package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulse-go/pulse"
)

// The client rule is written once, in testdata/client-rule.json at the
// module root; pulse.js is checked against the same file by
// test/node/client_rule.test.mjs, and PROTOCOL.md's section "Client rule"
// by TestClientRuleDocumented.

// clientRule is testdata/client-rule.json.
type clientRule struct {
	HandshakeTimeoutMS   int64  `json:"handshake_timeout_ms"`
	DegradedGraceDivisor int64  `json:"degraded_grace_divisor"`
	DegradedGraceMaxMS   int64  `json:"degraded_grace_max_ms"`
	BackoffBaseMS        int64  `json:"backoff_base_ms"`
	BackoffCapMS         int64  `json:"backoff_cap_ms"`
	StableAfterMS        int64  `json:"stable_after_ms"`
	RetryWindowMaxMS     int64  `json:"retry_window_max_ms"`
	QueueSize            int    `json:"queue_size"`
	QueueTTLMS           int64  `json:"queue_ttl_ms"`
	QueueFull            string `json:"queue_full"`
	CloseCodeServerDead  int    `json:"close_code_server_dead"`
	CloseCodeOther       int    `json:"close_code_other"`
	LivenessExamples     []struct {
		IntervalMS, TimeoutMS, DegradedAfterMS, LostAfterMS int64
	} `json:"liveness_examples"`
	RetryExamples []struct {
		Reason   string `json:"reason"`
		WindowMS int64  `json:"window_ms"`
	} `json:"retry_examples"`
}

const rulePath = "../testdata/client-rule.json"

func readRule(t *testing.T) (clientRule, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(rulePath)
	if err != nil {
		t.Fatal(err)
	}
	var r clientRule
	var all map[string]any
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	return r, all
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// The client package's defaults are the rule's numbers.
func TestClientRuleDefaults(t *testing.T) {
	r, _ := readRule(t)
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"handshake timeout", DefaultHandshakeTimeout, ms(r.HandshakeTimeoutMS)},
		{"degraded grace max", maxTick, ms(r.DegradedGraceMaxMS)},
		{"backoff base", DefaultBackoffBase, ms(r.BackoffBaseMS)},
		{"backoff cap", DefaultBackoffCap, ms(r.BackoffCapMS)},
		{"stable after", DefaultStableAfter, ms(r.StableAfterMS)},
		{"retry window max", MaxRetryWindow, ms(r.RetryWindowMaxMS)},
		{"queue TTL", DefaultQueueTTL, ms(r.QueueTTLMS)},
	} {
		if c.got != c.want {
			t.Errorf("%s: client has %v, the rule says %v", c.name, c.got, c.want)
		}
	}
	if DefaultQueueSize != r.QueueSize {
		t.Errorf("queue size: client has %d, the rule says %d", DefaultQueueSize, r.QueueSize)
	}
	if resolved := (*Options)(nil).resolved(); resolved.QueueSize != r.QueueSize || resolved.StableAfter != ms(r.StableAfterMS) {
		t.Errorf("nil options resolve to queue %d, stable after %v", resolved.QueueSize, resolved.StableAfter)
	}
}

// Degraded and lost follow from the server's interval and timeout as the
// rule's examples say.
func TestClientRuleLiveness(t *testing.T) {
	r, _ := readRule(t)
	for _, e := range r.LivenessExamples {
		s := &connection{interval: ms(e.IntervalMS), timeout: ms(e.TimeoutMS)}
		if got := s.interval + s.tick(); got != ms(e.DegradedAfterMS) {
			t.Errorf("interval %dms timeout %dms: degraded after %v, the rule says %dms", e.IntervalMS, e.TimeoutMS, got, e.DegradedAfterMS)
		}
		if grace := min(ms(e.IntervalMS), ms(e.TimeoutMS), ms(r.DegradedGraceMaxMS*r.DegradedGraceDivisor)) / time.Duration(r.DegradedGraceDivisor); s.tick() != grace {
			t.Errorf("interval %dms timeout %dms: grace %v, the rule's formula gives %v", e.IntervalMS, e.TimeoutMS, s.tick(), grace)
		}
		s.heard.Store(new(time.Time))
		s.opened = time.Unix(1, 0)
		lost := *s.heard.Load()
		if _, err := s.check(lost.Add(ms(e.LostAfterMS) - time.Millisecond)); err != nil {
			t.Errorf("interval %dms timeout %dms: lost 1ms before %dms: %v", e.IntervalMS, e.TimeoutMS, e.LostAfterMS, err)
		}
	}
}

// The retry window a close reason asks for, as the rule's examples say.
func TestClientRuleRetryWindow(t *testing.T) {
	r, _ := readRule(t)
	for _, e := range r.RetryExamples {
		err := &pulse.CloseError{Code: pulse.CloseServiceRestart, Reason: e.Reason, Retry: pulse.ParseRetry(e.Reason)}
		if got := retryWindow(err); got != ms(e.WindowMS) {
			t.Errorf("reason %q: window %v, the rule says %dms", e.Reason, got, e.WindowMS)
		}
	}
}

// A full queue refuses the new publish; the ones queued stay.
func TestClientRuleQueueFull(t *testing.T) {
	r, _ := readRule(t)
	if r.QueueFull != "refuse_new" {
		t.Fatalf("the rule's queue_full is %q; this test knows only refuse_new", r.QueueFull)
	}
	c := New("ws://unused/ws", &Options{QueueSize: 2})
	first, err := c.Send("q", json.RawMessage(`1`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send("q", json.RawMessage(`2`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send("q", json.RawMessage(`3`), nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third publish into a queue of 2: %v, want ErrQueueFull", err)
	}
	select {
	case <-first.o.done:
		t.Fatalf("the oldest publish was dropped: %v", first.o.out.err)
	default:
	}
}

// A client that judges the server dead closes with the rule's server-dead
// code (4000); one that ends a connection for any other reason, with the
// other code (1000).
func TestClientRuleCloseCodes(t *testing.T) {
	r, _ := readRule(t)
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Backoff: func(int) time.Duration { return time.Millisecond }})
		run := running(t, c)
		conn := f.accept(t, time.Second, time.Second)
		s.await(t, StateReconnecting) // silent: judged dead
		if got := conn.closedWith(); int(got) != r.CloseCodeServerDead {
			t.Errorf("judged dead: closed with %d, the rule says %d", got, r.CloseCodeServerDead)
		}
		unwelcomed := newFakeConn()
		f.next(t).answer <- dialAnswer{conn: unwelcomed}
		s.await(t, StateReconnecting) // no welcome within the handshake timeout
		if got := unwelcomed.closedWith(); int(got) != r.CloseCodeOther {
			t.Errorf("no welcome: closed with %d, the rule says %d", got, r.CloseCodeOther)
		}
		conn = f.accept(t, time.Hour, time.Hour)
		s.await(t, StateOpen)
		run.cancel()
		<-run.done
		if got := conn.closedWith(); int(got) != r.CloseCodeOther {
			t.Errorf("closing: closed with %d, the rule says %d", got, r.CloseCodeOther)
		}
	})
}

// PROTOCOL.md's section "Client rule" has one table row per number of
// the rule, naming its key and value.
func TestClientRuleDocumented(t *testing.T) {
	_, all := readRule(t)
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Client rule\n")
	if !ok {
		t.Fatal("PROTOCOL.md has no section ## Client rule")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{} // key -> value cell
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) == 3 && strings.HasPrefix(cells[2], "`") {
			rows[strings.Trim(cells[2], "`")] = strings.Trim(cells[1], "`")
		}
	}
	for key, v := range all {
		switch v.(type) {
		case float64, string:
		default:
			continue // examples and the comment
		}
		if key == "comment" {
			continue
		}
		if got, want := rows[key], fmt.Sprint(v); got != want {
			t.Errorf("PROTOCOL.md row for %s says %q, testdata/client-rule.json %q", key, got, want)
		}
	}
	if len(rows) != len(all)-3 {
		t.Errorf("PROTOCOL.md has %d rule rows, the file %d numbers", len(rows), len(all)-3)
	}
}
