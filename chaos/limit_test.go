package chaos_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

// A limited direction averages its rate, loses nothing and keeps order;
// the other direction and a healed link run at full speed.
func TestLimit(t *testing.T) {
	const rate, size = 64 << 10, 32 << 10 // half a second's worth
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	client, server, l := connect(t, p, sink)
	l.Limit(chaos.DirectionUpstream, rate)

	start := time.Now()
	want := pattern(0, size)
	send(t, client, string(want))
	got := make([]byte, size)
	server.SetReadDeadline(time.Now().Add(patience))
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !bytes.Equal(got, want) {
		t.Fatalf("limited bytes differ at %d", commonPrefix(got, want))
	}
	if took < 400*time.Millisecond {
		t.Fatalf("%d bytes at %d B/s took %v, want about 500ms", size, rate, took)
	}

	start = time.Now()
	send(t, server, string(want))
	expect(t, client, string(want))
	if down := time.Since(start); down > took/2 {
		t.Fatalf("the unlimited direction took %v", down)
	}

	l.Heal()
	start = time.Now()
	send(t, client, string(want))
	expect(t, server, string(want))
	if healed := time.Since(start); healed > took/2 {
		t.Fatalf("after Heal the link took %v", healed)
	}
	t.Logf("32 KiB at 64 KiB/s took %v", took.Round(time.Millisecond))
}

// A limit set on the proxy applies to links accepted later.
func TestProxyLimitAppliesToNewLinks(t *testing.T) {
	const rate = 20 << 10
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	p.Limit(chaos.DirectionDownstream, rate)
	client, server, _ := connect(t, p, sink)
	start := time.Now()
	send(t, server, string(pattern(0, 8<<10)))
	expect(t, client, string(pattern(0, 8<<10)))
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("8 KiB at 20 KiB/s took %v, want about 400ms", took)
	}
}
