package pulse

import "testing"

// A connection's RemoteAddr is its peer's address, as net.TCPAddr formats it.
func TestRemoteAddr(t *testing.T) { onEngines(t, testRemoteAddr) }

func testRemoteAddr(t *testing.T, engine Engine) {
	l := startLive(t, engine, nil)
	p := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	c := l.nextOpen(t)
	if got, want := c.RemoteAddr(), p.ws.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr %q, want the peer's %q", got, want)
	}
}
