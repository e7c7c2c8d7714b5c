//go:build linux

package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wait bounds every wait of the suite.
const wait = 15 * time.Second

var (
	buildOnce sync.Once
	pulseBin  string
	buildErr  error
)

// pulseBinary builds cmd/pulse once per test binary, into a directory
// TestMain removes.
func pulseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pulse-hostile-")
		if err != nil {
			buildErr = err
			return
		}
		pulseBin = filepath.Join(dir, "pulse")
		out, err := exec.Command("go", "build", "-o", pulseBin, "../../cmd/pulse").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pulseBin
}

// server is one pulse serve process.
type server struct {
	addr string
	pid  int
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer runs pulse serve with flags on a free loopback port; the
// cleanup stops it.
func startServer(t *testing.T, flags ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--api-key", "k", "--drain-window", "100ms"}, flags...)
	cmd := exec.Command(pulseBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrs <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-done
		}
		<-logDone
	})
	select {
	case addr := <-addrs:
		return &server{addr: addr, pid: cmd.Process.Pid}
	case <-time.After(wait):
		t.Fatal("pulse serve logged no listening line")
	}
	return nil
}

// fds counts the server's open files.
func (s *server) fds(t *testing.T) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid))
	if err != nil {
		t.Fatalf("open files of the server: %v", err)
	}
	return len(entries)
}

// metric reads one unlabelled sample of /metrics.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	client := &http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// healthy reports whether /healthz answers 200.
func (s *server) healthy() bool {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + s.addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// level is what the suite watches of the server's resources.
type level struct {
	fds        int
	goroutines float64
	heapMiB    float64
}

func (s *server) level(t *testing.T) level {
	return level{fds: s.fds(t), goroutines: s.metric(t, "go_goroutines"), heapMiB: s.metric(t, "go_memstats_heap_inuse_bytes") / (1 << 20)}
}

func (l level) String() string {
	return fmt.Sprintf("%d files, %.0f goroutines, %.1f MiB heap", l.fds, l.goroutines, l.heapMiB)
}

// heapSlackMiB is how much more heap than before an attack the server may
// keep after it: what it keeps by design (a channel's history of 1,000
// publications, recent idempotency keys), not what an attacker left.
const heapSlackMiB = 32

// awaitCalm waits until the server's files, goroutines and heap are back
// within slack of calm, and returns the level reached.
func (s *server) awaitCalm(t *testing.T, calm level) level {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		now := s.level(t)
		if now.fds <= calm.fds+2 && now.goroutines <= calm.goroutines+4 && now.heapMiB <= calm.heapMiB+heapSlackMiB {
			return now
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the server did not calm down: %v, calm was %v", now, calm)
		case <-time.After(50 * time.Millisecond): // the process is another: nothing to wait on but its state
		}
	}
}
