package cluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-go/pulse/client"
)

// wait bounds every wait of these tests for something that should happen
// well before it.
const wait = 15 * time.Second

// The liveness rule the nodes run with: a dead node's members must leave
// within interval + timeout + 1 s.
const (
	interval = time.Second
	timeout  = time.Second
	bound    = interval + timeout + time.Second
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildOut  []byte
)

// pulseBinary builds cmd/pulse once per test run.
func pulseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binary = filepath.Join(binDir, "pulse")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/pulse")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/pulse: %v\n%s", buildErr, buildOut)
	}
	return binary
}

// node is one `pulse serve` process.
type node struct {
	t    *testing.T
	name string
	addr string // host:port it listens on
	cmd  *exec.Cmd
	logs *logLines
	done chan struct{} // closed once the process exited and its log was read
}

// startNode starts `pulse serve` on a free port with the Redis broker at
// redisURL and the further flags, and kills it when t ends.
func startNode(t *testing.T, name, redisURL string, flags ...string) *node {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--broker", redisURL,
		"--ping-interval", interval.String(), "--pong-timeout", timeout.String(), "--drain-window", "100ms"}, flags...)
	cmd := exec.Command(pulseBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, cmd: cmd, logs: &logLines{}, done: make(chan struct{})}
	addrs := make(chan string, 1)
	go func() {
		defer close(n.done)
		n.logs.read(stderr, addrs)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("log of node %s:\n%s", name, n.logs)
		}
	})
	select {
	case n.addr = <-addrs:
	case <-n.done:
		t.Fatalf("node %s exited before listening:\n%s", name, n.logs)
	case <-time.After(wait):
		t.Fatalf("node %s: no msg=listening line logged", name)
	}
	return n
}

func (n *node) url() string { return "ws://" + n.addr + "/ws" }

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (n *node) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// logLines collects a process's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

// read collects lines from r until EOF and sends the address of the first
// "msg=listening" line to addrs.
func (l *logLines) read(r io.Reader, addrs chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
		if addr, ok := listeningAddr(line); ok {
			select {
			case addrs <- addr:
			default:
			}
		}
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func listeningAddr(line string) (string, bool) {
	var listening bool
	var addr string
	for _, f := range strings.Fields(line) {
		switch {
		case f == "msg=listening":
			listening = true
		case strings.HasPrefix(f, "addr="):
			addr = strings.TrimPrefix(f, "addr=")
		}
	}
	return addr, listening && addr != ""
}

// balancer is what a load balancer does for a client: each dial goes to
// the first node of its list that accepts it.
func balancer(nodes ...*node) func(ctx context.Context, _ string) (client.Transport, error) {
	return func(ctx context.Context, _ string) (client.Transport, error) {
		var err error
		for _, n := range nodes {
			var tr client.Transport
			if tr, err = client.DialWebSocket(ctx, n.url(), 2*time.Second); err == nil {
				return tr, nil
			}
		}
		return nil, err
	}
}

// TestUnreachableAtStart: a node whose Redis does not answer exits with
// status 1 and an error naming it, after a bounded wait.
func TestUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cmd := exec.Command(pulseBinary(t), "serve", "--addr", "127.0.0.1:0", "--broker", "redis://:secret@"+addr+"/0")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("pulse serve exited with %v, want status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "unreachable") || !strings.Contains(string(out), addr) || strings.Contains(string(out), "secret") {
		t.Errorf("output does not name the unreachable broker (or shows its password):\n%s", out)
	}
	t.Logf("pulse serve gave up after %v: %s", took.Round(100*time.Millisecond), strings.TrimSpace(string(out)))
	if took > wait {
		t.Errorf("pulse serve took %v to give up, want a bounded wait", took)
	}
}
