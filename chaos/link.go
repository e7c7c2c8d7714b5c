package chaos

import (
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// chunkSize bounds what one direction of a link reads, and so holds, at once.
const chunkSize = 32 << 10

// Link is one proxied connection: a client socket and a target socket.
// Two goroutines forward between them, one per direction. All methods may
// be called from any goroutine.
type Link struct {
	// Set at accept, never changes.
	proxy      *Proxy
	client     *net.TCPConn
	target     *net.TCPConn
	clientAddr string
	done       chan struct{} // closed when both forwarding goroutines exited

	// Each gate guards itself.
	up, down gate

	// stop is closed once, by release, to free goroutines held at a gate.
	stop     chan struct{}
	stopOnce sync.Once
}

// newLink returns a link between two connected sockets, not yet running.
func newLink(p *Proxy, client, target *net.TCPConn) *Link {
	return &Link{
		proxy:      p,
		client:     client,
		target:     target,
		clientAddr: client.RemoteAddr().String(),
		done:       make(chan struct{}),
		stop:       make(chan struct{}),
	}
}

// ClientAddr returns the remote address of the client socket, which is
// the LocalAddr of the connection the client dialed.
func (l *Link) ClientAddr() string { return l.clientAddr }

// Done returns a channel closed when both forwarding goroutines have exited.
func (l *Link) Done() <-chan struct{} { return l.done }

// Blackhole silently partitions the link in direction d: the proxy stops
// reading from the source socket, so the sender's buffers fill as in a
// real partition, and writes nothing. No socket is closed; no FIN, no RST.
func (l *Link) Blackhole(d Direction) {
	l.hold(d)
	l.proxy.log("%s: blackhole %v", l.clientAddr, d)
}

// Heal undoes Blackhole, Delay and Limit. Bytes held back are then
// forwarded, in order, none lost or duplicated.
func (l *Link) Heal() {
	l.heal()
	l.proxy.log("%s: heal", l.clientAddr)
}

// Delay holds every chunk forwarded in either direction for d before it
// is written. Chunks keep their order and are held one after another, so
// a busy link also slows to at most one chunk (32 KiB) per d in each
// direction. Zero removes the delay.
func (l *Link) Delay(d time.Duration) {
	l.setDelay(d)
	l.proxy.log("%s: delay %v", l.clientAddr, d)
}

// Cut ends the link abruptly: both sockets are reset (SetLinger(0), then
// Close) so both peers see a connection reset. Cutting an ended link does
// nothing.
func (l *Link) Cut() error {
	err := l.closeSockets(true)
	l.proxy.log("%s: cut", l.clientAddr)
	return err
}

// Close ends the link in order: both sockets are closed, so both peers
// read EOF (unless bytes were left unread in the proxy's socket, in which
// case the kernel sends a reset instead). Closing an ended link does
// nothing.
func (l *Link) Close() error {
	err := l.closeSockets(false)
	l.proxy.log("%s: close", l.clientAddr)
	return err
}

func (l *Link) hold(d Direction) {
	for _, g := range pick(d, &l.up, &l.down) {
		g.hold()
	}
}

func (l *Link) heal() {
	l.up.heal()
	l.down.heal()
}

func (l *Link) setDelay(d time.Duration) {
	l.up.setDelay(d)
	l.down.setDelay(d)
}

// release frees the forwarding goroutines waiting at a gate or a delay.
func (l *Link) release() {
	l.stopOnce.Do(func() { close(l.stop) })
}

// shut closes both sockets, which ends both forwarding goroutines.
func (l *Link) shut() { l.closeSockets(false) }

// closeSockets releases the gates and closes both sockets, first setting
// them to reset if asked. Errors from sockets already closed, by the
// forwarding goroutines or an earlier call, are dropped.
func (l *Link) closeSockets(reset bool) error {
	var errs []error
	both := []*net.TCPConn{l.client, l.target}
	if reset {
		for _, c := range both {
			errs = append(errs, c.SetLinger(0))
		}
	}
	l.release()
	for _, c := range both {
		errs = append(errs, c.Close())
	}
	errs = slices.DeleteFunc(errs, func(err error) bool { return errors.Is(err, net.ErrClosed) })
	return errors.Join(errs...)
}
