package chaos_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

func TestBlackholeBoth(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	c1, s1, l1 := connect(t, p, sink)
	c2, s2, _ := connect(t, p, sink)

	l1.Blackhole(chaos.DirectionBoth)
	send(t, c1, "up1")
	send(t, s1, "down1")
	expectSilence(t, s1)
	expectSilence(t, c1)

	send(t, c2, "other")
	expect(t, s2, "other")
	send(t, s2, "links")
	expect(t, c2, "links")

	send(t, c1, "up2")
	l1.Heal()
	expect(t, s1, "up1up2")
	expect(t, c1, "down1")
	send(t, c1, "after")
	expect(t, s1, "after")
}

func TestBlackholeOneDirection(t *testing.T) {
	for _, dir := range []chaos.Direction{chaos.DirectionUpstream, chaos.DirectionDownstream} {
		t.Run(dir.String(), func(t *testing.T) {
			addr, sink := startSink(t)
			p := startProxy(t, addr)
			client, server, l := connect(t, p, sink)
			// from sends into the blackhole; to should hear nothing.
			from, to, back, fro := client, server, server, client
			if dir == chaos.DirectionDownstream {
				from, to, back, fro = server, client, client, server
			}

			l.Blackhole(dir)
			send(t, from, "held")
			send(t, back, "flows")
			expect(t, fro, "flows")
			expectSilence(t, to)

			l.Heal()
			expect(t, to, "held")
		})
	}
}

func TestProxyBlackholeAppliesToNewLinks(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	p.Blackhole(chaos.DirectionBoth)
	client, server, _ := connect(t, p, sink)

	send(t, client, "up")
	send(t, server, "down")
	expectSilence(t, server)
	expectSilence(t, client)

	p.Heal()
	expect(t, server, "up")
	expect(t, client, "down")
}

// A blackhole stops reads, so the sender's writes block once the kernel
// buffers are full; after Heal every byte written arrives, once, in order.
func TestBlackholeBackpressure(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	client, server, l := connect(t, p, sink)

	l.Blackhole(chaos.DirectionUpstream)
	sent := fillUntilBlocked(t, client)
	t.Logf("wrote %d bytes before blocking", sent)

	l.Heal()
	server.SetReadDeadline(time.Now().Add(patience))
	got := make([]byte, sent)
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatalf("read held bytes: %v", err)
	}
	if want := pattern(0, sent); !bytes.Equal(got, want) {
		t.Fatalf("held bytes differ at %d of %d", commonPrefix(got, want), sent)
	}
	expectSilence(t, server)
}

// fillUntilBlocked writes the pattern to c until a write stalls for the
// silence period, and returns how many bytes went out. It fails the test
// if writes never stall.
func fillUntilBlocked(t *testing.T, c net.Conn) int {
	t.Helper()
	const chunk, limit = 1 << 20, 1 << 30
	defer c.SetWriteDeadline(time.Time{})
	for sent := 0; sent < limit; {
		data := pattern(sent, chunk)
		c.SetWriteDeadline(time.Now().Add(silence))
		n, err := c.Write(data)
		sent += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return sent
		}
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	t.Fatalf("wrote %d bytes into a blackhole without blocking", limit)
	return 0
}

// Delay holds each chunk in each direction, so an echo round trip through
// the proxy takes at least twice the delay, on links old and new.
func TestDelay(t *testing.T) {
	const d = 150 * time.Millisecond
	p := startProxy(t, startTarget(t, echo))
	before := dial(t, p)
	waitLink(t, p, before)
	p.Delay(d)
	after := dial(t, p)

	for _, c := range []net.Conn{before, after} {
		start := time.Now()
		send(t, c, "tick")
		expect(t, c, "tick")
		if took := time.Since(start); took < 2*d {
			t.Fatalf("round trip on %s took %v, want at least %v", c.LocalAddr(), took, 2*d)
		}
	}

	p.Heal()
	start := time.Now()
	send(t, after, "tock")
	expect(t, after, "tock")
	if took := time.Since(start); took >= patience {
		t.Fatalf("round trip after Heal took %v", took)
	}
}
