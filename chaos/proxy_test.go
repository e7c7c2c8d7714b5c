package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/pulse-go/pulse/chaos"
)

func TestForwardBothWays(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	client, server, _ := connect(t, p, sink)

	send(t, client, "ping")
	expect(t, server, "ping")
	send(t, server, "pong")
	expect(t, client, "pong")
}

// SetDialFrom sets the address the proxy's dials of the target come from;
// nil gives it back to the system.
func TestDialFrom(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 3), nil} {
		p.SetDialFrom(ip)
		_, server, _ := connect(t, p, sink)
		got := server.RemoteAddr().(*net.TCPAddr).IP
		if want := ip; want == nil && !got.Equal(net.IPv4(127, 0, 0, 1)) || want != nil && !got.Equal(want) {
			t.Errorf("SetDialFrom(%v): the target saw a dial from %v", ip, got)
		}
	}
}

func TestForwardLargeEcho(t *testing.T) {
	p := startProxy(t, startTarget(t, echo))
	client := dial(t, p)
	want := pattern(0, 4<<20)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		client.Write(want)
		client.CloseWrite()
	})
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo through proxy: got %d bytes, want %d, equal prefix %d",
			len(got), len(want), commonPrefix(got, want))
	}
}

func TestLinksAndLookup(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	c1, _, l1 := connect(t, p, sink)
	c2, _, l2 := connect(t, p, sink)

	if l1.ClientAddr() != c1.LocalAddr().String() || l2.ClientAddr() != c2.LocalAddr().String() {
		t.Fatalf("client addrs %s %s, want %s %s", l1.ClientAddr(), l2.ClientAddr(), c1.LocalAddr(), c2.LocalAddr())
	}
	if links := p.Links(); len(links) != 2 || links[0] != l1 || links[1] != l2 {
		t.Fatalf("Links() = %v, want [l1 l2]", links)
	}
	if l := p.Link("127.0.0.1:1"); l != nil {
		t.Fatalf("Link(unknown) = %v, want nil", l)
	}
	l1.Close()
	waitDone(t, l1)
	if links := p.Links(); len(links) != 1 || links[0] != l2 {
		t.Fatalf("after close, Links() = %v, want [l2]", links)
	}
}

func TestWaitLinksStops(t *testing.T) {
	p := startProxy(t, startTarget(t, echo))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.WaitLinks(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitLinks with canceled ctx: %v, want context.Canceled", err)
	}
	p.Close()
	if _, err := p.WaitLinks(t.Context(), 1); !errors.Is(err, chaos.ErrClosed) {
		t.Fatalf("WaitLinks after Close: %v, want ErrClosed", err)
	}
}

func TestCloseWhileBlackholed(t *testing.T) {
	addr, sink := startSink(t)
	p, err := chaos.Listen("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	c1, s1, l1 := connect(t, p, sink)
	_, _, l2 := connect(t, p, sink)
	p.Blackhole(chaos.DirectionBoth)
	send(t, c1, "held up")
	send(t, s1, "held down")
	p.Delay(patience)

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, l := range []*chaos.Link{l1, l2} {
		select {
		case <-l.Done():
		default:
			t.Fatalf("link %s still running after Close", l.ClientAddr())
		}
	}
	if links := p.Links(); len(links) != 0 {
		t.Fatalf("Links() after Close = %v, want none", links)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// pattern returns bytes offset to offset+n of a stream in which lost,
// duplicated or reordered chunks show.
func pattern(offset, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		k := offset + i
		b[i] = byte(k*7 + k>>11 + k>>19)
	}
	return b
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
