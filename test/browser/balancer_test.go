package browser

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildPulse builds cmd/pulse of this repository into a directory of t.
func buildPulse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pulse")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pulse")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pulse: %v\n%s", err, out)
	}
	return bin
}

// node is one `pulse serve` process that the test may kill.
type node struct {
	server
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

// startNode runs `bin serve` with the test's liveness rule on a free
// loopback port, with the further flags, and kills it when the test ends.
func startNode(t *testing.T, bin string, flags ...string) *node {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--ping-interval", testInterval.String(),
		"--pong-timeout", testTimeout.String(), "--drain-window", "50ms"}, flags...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	n := &node{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(n.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	t.Cleanup(n.kill)
	select {
	case n.addr = <-addr:
		return n
	case <-n.done:
		t.Fatalf("%s exited before listening", bin)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not log msg=listening within 10s", bin)
	}
	return nil
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
// A second call does nothing.
func (n *node) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// balancer is what a load balancer in front of several nodes does: each
// TCP connection it accepts goes to the first node of its list that
// accepts one, and ends when either side ends.
type balancer struct {
	server
	ln      net.Listener
	down    atomic.Bool // while set, connections are closed at once
	targets []string
	wg      sync.WaitGroup // the accept loop and every connection's copies

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// startBalancer listens on another loopback address (another origin for
// the browser) in front of nodes, until the test ends.
func startBalancer(t *testing.T, nodes ...*node) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{server: server{addr: ln.Addr().String()}, ln: ln, conns: make(map[net.Conn]struct{})}
	for _, n := range nodes {
		b.targets = append(b.targets, n.addr)
	}
	b.wg.Go(b.accept)
	t.Cleanup(b.close)
	return b
}

// setDown makes the balancer refuse connections (close them at once), as
// one does while it has not yet noticed which node died, or accept them
// again.
func (b *balancer) setDown(down bool) { b.down.Store(down) }

func (b *balancer) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		b.wg.Go(func() { b.forward(c) })
	}
}

// forward connects c to the first target that accepts and copies both
// ways until either side ends; with no target, c is closed.
func (b *balancer) forward(c net.Conn) {
	if b.down.Load() {
		c.Close()
		return
	}
	up, err := b.dial()
	if err != nil || !b.track(c, up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	var copies sync.WaitGroup
	for _, pair := range [][2]net.Conn{{up, c}, {c, up}} {
		copies.Go(func() {
			io.Copy(pair[0], pair[1])
			c.Close() // either side's end ends both
			up.Close()
		})
	}
	copies.Wait()
	b.mu.Lock()
	delete(b.conns, c)
	delete(b.conns, up)
	b.mu.Unlock()
}

func (b *balancer) dial() (net.Conn, error) {
	var errs []error
	for _, target := range b.targets {
		up, err := net.DialTimeout("tcp", target, time.Second)
		if err == nil {
			return up, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// track notes the sockets of a connection, unless the balancer is closed.
func (b *balancer) track(conns ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false
	}
	for _, c := range conns {
		b.conns[c] = struct{}{}
	}
	return true
}

// close stops accepting, closes every connection and joins the goroutines.
func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
	b.wg.Wait()
}
