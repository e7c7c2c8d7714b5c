// Package redistest starts real redis-server processes for tests: on a
// free loopback port, without persistence, stopped when the test ends.
// Without redis-server on PATH the test fails, it never skips: install it
// with scripts/redis-deps.sh.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds the wait for a redis-server to accept connections.
const startTimeout = 10 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	Port int // set by Start, never changes; Restart keeps it
	cmd  *exec.Cmd
}

// Start starts a redis-server on a free port and stops it when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{t: tb, Port: freePort(tb)}
	s.start()
	tb.Cleanup(s.Kill)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redis-server is not installed (%v): run scripts/redis-deps.sh, or apt-get install redis-server", err)
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	if err := waitReady(out); err != nil {
		s.Kill()
		s.t.Fatalf("redis-server on port %d: %v", s.Port, err)
	}
}

// waitReady reads the server's log until it accepts connections, then
// drains the rest in the background until the process exits.
func waitReady(out io.Reader) error {
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if strings.Contains(last, "Ready to accept connections") {
				ready <- nil
				io.Copy(io.Discard, out)
				return
			}
		}
		ready <- fmt.Errorf("exited before it was ready; last line %q", last)
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(startTimeout):
		return fmt.Errorf("not ready after %v", startTimeout)
	}
}

// Kill ends the server at once (SIGKILL) and waits for it; its data is
// gone. A second call does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server and starts an empty one on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Pause stops the server with SIGSTOP; Resume continues it.
func (s *Server) Pause() { s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
