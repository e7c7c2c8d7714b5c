package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
)

// run forwards both directions of l until both have ended, then closes
// both sockets, drops l from the proxy's links and closes Done.
func (l *Link) run() {
	var wg sync.WaitGroup
	wg.Go(func() { l.pipe(l.target, l.client, &l.up) })
	l.pipe(l.client, l.target, &l.down)
	wg.Wait()
	l.shut()
	l.proxy.remove(l)
	close(l.done)
	l.proxy.log("%s: ended", l.clientAddr)
}

// pipe copies src to dst one chunk at a time through g. It waits at the
// gate before reading, so a held gate stops reads and backpressure builds
// in the sender, and again before writing, so a chunk read just before a
// Blackhole is held too.
func (l *Link) pipe(dst, src *net.TCPConn, g *gate) {
	buf := make([]byte, chunkSize)
	for g.wait(l.stop) {
		n, err := src.Read(buf)
		if n > 0 && !l.forward(dst, buf[:n], g) {
			l.shut()
			return
		}
		if err != nil {
			l.end(dst, err)
			return
		}
	}
}

// forward writes b to dst after the delay and the gate, in pieces paced
// by the bandwidth limit if one is set. It returns false if the link was
// stopped or the write failed.
func (l *Link) forward(dst *net.TCPConn, b []byte, g *gate) bool {
	if !g.pause(l.stop) || !g.wait(l.stop) {
		return false
	}
	for len(b) > 0 {
		n := g.piece(len(b))
		if _, err := dst.Write(b[:n]); err != nil {
			return false
		}
		b = b[n:]
		if !g.throttle(l.stop, n) {
			return false
		}
	}
	return true
}

// end passes on the end of a direction: EOF becomes a half close of dst,
// any other error closes the whole link.
func (l *Link) end(dst *net.TCPConn, err error) {
	if errors.Is(err, io.EOF) {
		dst.CloseWrite()
		return
	}
	l.shut()
}
