package browser

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"
)

var listeningRE = regexp.MustCompile(`\bmsg=listening addr=(\S+)`)

// startBinary runs `bin serve` on a free loopback port with the test's
// liveness rule, and stops it with SIGTERM when the test ends.
func startBinary(t *testing.T, bin string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0",
		"--ping-interval", testInterval.String(), "--pong-timeout", testTimeout.String(),
		"--drain-window", "50ms", "--log-level", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	addr := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
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
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-read
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s after SIGTERM: %v", bin, err)
		}
	})
	select {
	case a := <-addr:
		return &server{addr: a}
	case <-read:
		t.Fatalf("%s exited before listening", bin)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not log msg=listening within 10s", bin)
	}
	return nil
}
