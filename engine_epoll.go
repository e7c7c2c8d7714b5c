//go:build linux

package pulse

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollEngine reports that EngineEpoll is available.
const epollEngine = true

// The epoll engine. The upgrade goes through net/http and gorilla as on
// the std engine; then the socket is taken out of Go's network poller and
// handed to one epoll loop that all connections share. An idle connection
// holds no goroutine and no buffer: the loop reads every socket into its
// one read buffer and parses frames as they arrive (frameReader), the
// Conn's writer exists only while there is something to write, and the
// delivery of messages to the session runs in a goroutine of its own only
// while messages wait.

// pollReadBuffer is the size of the loop's one read buffer.
const pollReadBuffer = 64 << 10

// maxInbox is how many received messages may wait for the session before
// the connection's socket is no longer read, until the session has taken
// half. The read that reaches it is parsed whole, so at most one read
// buffer's worth of messages (pollReadBuffer bytes) comes on top.
const maxInbox = 64

// wakeKey is the epoll key of the loop's own eventfd; connections have
// keys from 1 up.
const wakeKey = 0

// poller is one epoll instance and the goroutine that waits on it.
type poller struct {
	// Set by newPoller, never changes.
	epfd int
	wake int // an eventfd: written to stop the loop
	done chan struct{}

	mu    sync.Mutex // guards the fields below
	conns map[uint64]*pollConn
	next  uint64
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pulse: epoll_create: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("pulse: eventfd: %w", err)
	}
	p := &poller{epfd: epfd, wake: wake, done: make(chan struct{}), conns: make(map[uint64]*pollConn), next: wakeKey + 1}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setKey(&ev, wakeKey)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("pulse: epoll_ctl: %w", err)
	}
	go p.run()
	return p, nil
}

func (p *poller) closeFDs() {
	unix.Close(p.wake)
	unix.Close(p.epfd)
}

// stop ends the loop and waits for it. Every connection must have ended.
func (p *poller) stop() {
	unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-p.done
	p.closeFDs()
}

// setKey and key carry a connection's key in an event's 64 bits of data.
func setKey(ev *unix.EpollEvent, k uint64) { ev.Fd, ev.Pad = int32(uint32(k)), int32(uint32(k>>32)) }
func key(ev *unix.EpollEvent) uint64       { return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 }

// run is the loop: it owns the read buffer and every connection's frameReader.
func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, pollReadBuffer)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil && err != unix.EINTR {
			panic("pulse: epoll_wait: " + err.Error()) // only a bad epfd fails so
		}
		for i := range n {
			k := key(&events[i])
			if k == wakeKey {
				return
			}
			p.mu.Lock()
			t := p.conns[k]
			p.mu.Unlock()
			if t == nil {
				continue // ended since the event
			}
			if events[i].Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 && t.hungUp() {
				continue
			}
			if events[i].Events&unix.EPOLLOUT != 0 {
				t.writable()
			}
			if events[i].Events&^unix.EPOLLOUT != 0 {
				t.readable(buf)
			}
		}
	}
}

// add registers t's socket with the loop.
func (p *poller) add(t *pollConn) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p.mu.Lock()
	t.key = p.next
	p.next++
	p.conns[t.key] = t
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: t.interestLocked()}
	setKey(&ev, t.key)
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, t.fd, &ev)
}

func (p *poller) forget(t *pollConn) {
	p.mu.Lock()
	delete(p.conns, t.key)
	p.mu.Unlock()
}

// pollConn is the transport of one connection on the epoll engine.
type pollConn struct {
	// Set at the handover, never changes.
	p      *poller
	c      *Conn
	key    uint64
	remote netip.AddrPort // formatted only when asked: most connections never are

	// Owned by the loop.
	r frameReader

	mu         sync.Mutex // guards the fields below, key, and every use of fd
	fd         int        // -1 once closed
	detached   bool       // taken out of epoll after a hangup
	writableCh chan struct{}
	readsDone  bool // reads have ended: the loop reads and delivers no more
	paused     bool // the inbox is full: the socket is not read
	inbox      []received
	delivering bool // a delivery goroutine runs
	faulted    bool // a message failed to inflate: nothing more is delivered
	deliveries sync.WaitGroup
}

// received is a message waiting for the session; a compressed one is
// inflated by the delivery goroutine, off the loop.
type received struct {
	m          Message
	compressed bool
}

var errReadsEnded = errors.New("pulse: reads ended after the close frame")

// serveEpoll hands an upgraded connection to the epoll loop, or reports
// false for a socket it cannot take (TLS), which stays on gorilla.
func (s *Server) serveEpoll(conn net.Conn, hs handshake, session Session) bool {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return false
	}
	fd, err := takeSocket(tcp)
	if err != nil {
		s.opts.Logger.Warn("pulse: handing a connection to epoll", "err", err)
		return true
	}
	t := &pollConn{fd: fd, remote: tcpAddrPort(tcp.RemoteAddr()), r: frameReader{limit: s.opts.MaxMessageSize, deflate: hs.deflate > 0}}
	p, err := s.poller()
	if err == nil {
		t.p = p
		_, err = s.open(t, hs, session) // binds t.c
	}
	if err != nil {
		unix.Write(fd, s.restartClose(hs.response))
		unix.Close(fd)
		return true
	}
	if err := p.add(t); err != nil {
		t.endRead(err)
	}
	return true
}

// tcpAddrPort is a socket's address as a value of 32 bytes, which the
// connection keeps without an allocation and formats only when asked, as
// net.TCPAddr would (an IPv4-mapped address as IPv4).
func tcpAddrPort(addr net.Addr) netip.AddrPort {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := tcp.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// takeSocket duplicates tcp's descriptor and closes tcp: Go's poller
// forgets the socket, which lives on in the duplicate. The duplicate is
// non-blocking as it is: O_NONBLOCK belongs to the open socket, which the
// two descriptors share, and Go's poller keeps every socket of a
// *net.TCPConn non-blocking.
func takeSocket(tcp *net.TCPConn) (int, error) {
	defer tcp.Close()
	rc, err := tcp.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	if cerr != nil || err != nil {
		return -1, errors.Join(cerr, err)
	}
	return fd, nil
}

// poller returns the server's epoll loop, started at the first handover
// and never once the server drains; Run stops it once every connection
// has ended.
func (s *Server) poller() (*poller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accepting() { // drain has begun (under s.mu): Run will not stop a loop started now
		return nil, errNotAccepting
	}
	if s.poll == nil {
		p, err := newPoller()
		if err != nil {
			return nil, err
		}
		s.poll = p
	}
	return s.poll, nil
}

// stopPoller ends the epoll loop, if it was started.
func (s *Server) stopPoller() {
	s.mu.Lock()
	p := s.poll
	s.poll = nil
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// interestLocked is the set of events the loop waits for on t.
func (t *pollConn) interestLocked() uint32 {
	var ev uint32
	if !t.readsDone && !t.paused {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if t.writableCh != nil {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// modifyLocked tells epoll what t waits for now.
func (t *pollConn) modifyLocked() {
	if t.fd < 0 || t.key == 0 || t.detached {
		return
	}
	ev := unix.EpollEvent{Events: t.interestLocked()}
	setKey(&ev, t.key)
	unix.EpollCtl(t.p.epfd, unix.EPOLL_CTL_MOD, t.fd, &ev)
}

// readable reads what the socket holds into the loop's buffer and parses it.
func (t *pollConn) readable(buf []byte) {
	t.mu.Lock()
	if t.fd < 0 || t.readsDone || t.paused {
		t.mu.Unlock()
		return
	}
	n, err := unix.Read(t.fd, buf)
	t.mu.Unlock()
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		t.endRead(os.NewSyscallError("read", err))
		return
	case n == 0:
		t.endRead(io.EOF)
		return
	}
	t.c.touch()
	if err := t.r.feed(buf[:n], t); err != nil {
		t.fault(err)
	}
}

// fault closes the connection for a frame the peer should not have sent;
// what was received and answered before it is flushed first.
func (t *pollConn) fault(err error) {
	var fe *frameError
	if !errors.As(err, &fe) {
		fe = protocolError(err.Error())
	}
	req := &closeRequest{err: newCloseError(fe.code, fe.reason), label: fe.label()}
	go func() { // the parser is done, so no delivery starts after this one's Wait
		t.deliveries.Wait() // the session answers what came before the fault
		t.c.mu.Lock()
		t.c.closeLocked(req, true)
		t.c.mu.Unlock()
	}()
}

// pauseHook, set by a test, is told of each socket whose reading the loop
// pauses for a full inbox; it must not block. Nil otherwise.
var pauseHook atomic.Pointer[func(*pollConn)]

// The frameSink methods, called by the loop.

func (t *pollConn) message(op opcode, data []byte, compressed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.readsDone || t.faulted {
		return
	}
	t.inbox = append(t.inbox, received{Message{Type: MessageType(op), Data: data}, compressed})
	if len(t.inbox) >= maxInbox && !t.paused {
		t.paused = true
		t.modifyLocked()
		if h := pauseHook.Load(); h != nil {
			(*h)(t)
		}
	}
	if !t.delivering {
		t.delivering = true
		t.deliveries.Add(1)
		go t.deliver()
	}
}

func (t *pollConn) ping(payload []byte) { t.c.onPing(append([]byte(nil), payload...)) }
func (t *pollConn) pong()               { t.c.onPong() }

// peerClose answers the peer's close frame once the session has had the
// messages that came before it, so that its answers go out first.
func (t *pollConn) peerClose(code CloseCode, reason string) {
	go func() { // the parser is done, so no delivery starts after this one's Wait
		t.deliveries.Wait()
		t.c.onPeerClose(code, reason)
		t.endRead(errReadsEnded)
	}()
}

// deliver hands the inbox to the session, one message at a time, until it
// is empty; it resumes reading once the session has taken half. It
// inflates compressed messages, so that the loop never does.
func (t *pollConn) deliver() {
	defer t.deliveries.Done()
	for {
		t.mu.Lock()
		if len(t.inbox) == 0 || t.faulted {
			t.inbox, t.delivering = nil, false
			t.mu.Unlock()
			return
		}
		r := t.inbox[0]
		t.inbox[0] = received{}
		t.inbox = t.inbox[1:]
		if t.paused && len(t.inbox) <= maxInbox/2 {
			t.paused = false
			t.modifyLocked()
		}
		t.mu.Unlock()
		if r.compressed {
			var fe *frameError
			if r.m.Data, fe = inflateMessage(opcode(r.m.Type), r.m.Data, t.c.srv.opts.MaxMessageSize); fe != nil {
				t.inflateFailed(fe)
				continue // ends the loop: faulted
			}
		}
		t.c.onMessage(r.m)
	}
}

// inflateFailed closes the connection for a compressed message that does
// not inflate, after the answers to what came before it, as fault does;
// what came after it is dropped, and the loop reads on (answering nothing)
// until the close frame is out.
func (t *pollConn) inflateFailed(fe *frameError) {
	t.mu.Lock()
	t.faulted = true
	if t.paused {
		t.paused = false
		t.modifyLocked()
	}
	t.mu.Unlock()
	t.c.mu.Lock()
	t.c.closeLocked(&closeRequest{err: newCloseError(fe.code, fe.reason), label: fe.label()}, true)
	t.c.mu.Unlock()
}

// endRead ends the connection's reads, once: the loop stops reading it, and
// once the session has every message received, the Conn is told.
func (t *pollConn) endRead(err error) {
	t.mu.Lock()
	if t.readsDone {
		t.mu.Unlock()
		return
	}
	t.readsDone = true
	t.modifyLocked()
	t.mu.Unlock()
	go func() {
		t.deliveries.Wait()
		t.c.readEnded(err)
	}()
}

// hungUp handles a hangup or socket error once reads have ended: epoll
// reports those whatever it is asked, so the socket leaves epoll, and a
// waiting writer goes on to find the error. It reports false while reads
// go on: the reader meets the end itself.
func (t *pollConn) hungUp() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.readsDone {
		return false
	}
	if t.fd >= 0 && !t.detached {
		t.detached = true
		unix.EpollCtl(t.p.epfd, unix.EPOLL_CTL_DEL, t.fd, nil)
	}
	if t.writableCh != nil {
		close(t.writableCh)
		t.writableCh = nil
	}
	return true
}

// writable is the loop's news that a waiting writer may go on.
func (t *pollConn) writable() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.writableCh != nil {
		close(t.writableCh)
		t.writableCh = nil
		t.modifyLocked()
	}
}

func (t *pollConn) writeFrames(fs []frame, deadline time.Time) error {
	f := encodeFrames(fs)
	defer f.release()
	return t.writeAll(f.vec, deadline)
}

// tryWriteFrames writes what the socket takes of fs now, without waiting.
func (t *pollConn) tryWriteFrames(fs []frame) (func(time.Time) error, error) {
	f := encodeFrames(fs)
	n, wait, err := t.writev(f.vec)
	if err != nil || (wait == nil && n == int64(totalLen(f.vec))) {
		f.release()
		return nil, err
	}
	vec := consume(f.vec, n)
	return func(deadline time.Time) error {
		defer f.release()
		if wait != nil {
			if err := waitWritable(wait, deadline); err != nil {
				return err
			}
		}
		return t.writeAll(vec, deadline)
	}, nil
}

func totalLen(vec net.Buffers) int {
	n := 0
	for _, b := range vec {
		n += len(b)
	}
	return n
}

// writeAll writes vec, waiting for the socket when it is full, until deadline.
func (t *pollConn) writeAll(vec net.Buffers, deadline time.Time) error {
	for len(vec) > 0 {
		n, wait, err := t.writev(vec)
		if err != nil {
			return err
		}
		vec = consume(vec, n)
		if wait != nil {
			if err := waitWritable(wait, deadline); err != nil {
				return err
			}
		}
	}
	return nil
}

// consume drops the first n bytes of vec.
func consume(vec net.Buffers, n int64) net.Buffers {
	for len(vec) > 0 && n >= int64(len(vec[0])) {
		n -= int64(len(vec[0]))
		vec = vec[1:]
	}
	if len(vec) > 0 {
		vec[0] = vec[0][n:]
	}
	return vec
}

// writev writes what the socket takes of vec; when it takes nothing, it
// returns a channel closed once the socket is writable again.
func (t *pollConn) writev(vec net.Buffers) (int64, <-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fd < 0 {
		return 0, nil, net.ErrClosed
	}
	var n int
	var err error
	if len(vec) == 1 {
		n, err = unix.Write(t.fd, vec[0])
	} else {
		n, err = unix.Writev(t.fd, vec)
	}
	switch {
	case err == unix.EAGAIN:
		t.writableCh = make(chan struct{})
		t.modifyLocked()
		return 0, t.writableCh, nil
	case err == unix.EINTR:
		return 0, nil, nil
	case err != nil:
		return 0, nil, os.NewSyscallError("write", err)
	}
	return int64(n), nil, nil
}

// waitWritable waits for ready, or fails with a timeout at deadline.
func waitWritable(ready <-chan struct{}, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-timer.C:
		return os.ErrDeadlineExceeded
	}
}

func (t *pollConn) endReads(d time.Duration) {
	if d <= 0 {
		t.endRead(errReadsEnded)
		return
	}
	time.AfterFunc(d, func() { t.endRead(errReadsEnded) })
}

func (t *pollConn) close() error {
	t.mu.Lock()
	fd := t.fd
	if fd >= 0 {
		t.fd = -1
		if t.key != 0 {
			t.p.forget(t) // closing fd, its only descriptor, takes it out of epoll
		}
		unix.Close(fd)
		if t.writableCh != nil {
			close(t.writableCh) // the writer finds the socket closed
			t.writableCh = nil
		}
	}
	t.mu.Unlock()
	t.endRead(net.ErrClosed)
	return nil
}

// abort resets the connection: SO_LINGER 0 drops what the kernel holds.
func (t *pollConn) abort() error {
	t.mu.Lock()
	if t.fd >= 0 {
		unix.SetsockoptLinger(t.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	t.mu.Unlock()
	return t.close()
}

func (t *pollConn) remoteAddr() string { return t.remote.String() }

// bind sets the Conn that t feeds; s.open calls it before the session opens.
func (t *pollConn) bind(c *Conn) { t.c = c }

var (
	_ transport = (*pollConn)(nil)
	_ frameSink = (*pollConn)(nil)
)

// inboxLen reports how many received messages wait for the session, and
// whether reading is paused for them; for tests.
func (t *pollConn) inboxLen() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inbox), t.paused
}
