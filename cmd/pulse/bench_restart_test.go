//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchStormRestart restarts a pulse binary under 200 clients: SIGTERM
// to --pid, then --restart-cmd on the same address. Every client comes
// back to the new server, which has lost the memory broker's history:
// every resubscription is unrecovered, and the tool says so.
func TestBenchStormRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin := buildPulse(ctx, t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the two servers take turns on it
	first := startBinary(t, bin, addr)
	pidFile := filepath.Join(t.TempDir(), "pid")
	restart := fmt.Sprintf("exec %s serve --addr %s %s --drain-window 200ms --log-level warn >/dev/null 2>&1 & echo $! > %s",
		bin, addr, strings.Join(benchLimits, " "), pidFile)
	t.Cleanup(func() {
		if data, err := os.ReadFile(pidFile); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			syscall.Kill(pid, syscall.SIGKILL) // the second server, not our child
		}
	})
	const n = 200
	res := benchJSON(t, "storm", "--n", strconv.Itoa(n), "--room", "20", "--rate", "100", "--duration", "15s",
		"--pid", strconv.Itoa(first), "--restart-cmd", restart, "ws://"+addr+"/ws")
	if back := fig(t, res, "clients back"); back != n {
		t.Errorf("%v of %d clients back", back, n)
	}
	if v := fig(t, res, "resubscriptions not recovered"); v != n {
		t.Errorf("%v resubscriptions not recovered; a restarted memory broker recovers none of %d", v, n)
	}
	// The new server's count starts again from zero: a reading per
	// second, a second at least between two, shows no more than the
	// clients and the publisher that came back to it.
	if v := fig(t, res, "highest admitted in one second, server's count"); v <= 0 || v > n+1 {
		t.Errorf("the server admitted up to %v upgrades in a second; %d clients and the publisher came back", v, n)
	}
	sent, delivered := fig(t, res, "publications sent"), fig(t, res, "deliveries")
	if delivered == 0 || delivered > sent*20 {
		t.Errorf("%v deliveries of %v publications in rooms of 20", delivered, sent)
	}
	m, err := scrapeMetrics(ctx, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatalf("the restarted server: %v", err)
	}
	if welcomed := m["pulse_connections"] + m["pulse_disconnects_total"]; welcomed < n+1 {
		t.Errorf("the restarted server saw %v connections; %d clients and the publisher came back", welcomed, n)
	}
}

// startBinary runs "bin serve --addr addr" until the test ends and returns
// its pid once it listens; a goroutine collects it when it exits.
func startBinary(t *testing.T, bin, addr string) int {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--drain-window", "200ms"}, benchLimits...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs, addrs, exited := &logLines{}, make(chan string, 1), make(chan struct{})
	go func() {
		defer close(exited)
		logs.read(stderr, addrs)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // a no-op once it has exited
		<-exited
	})
	select {
	case <-addrs:
	case <-time.After(wait):
		t.Fatalf("pulse serve did not listen:\n%s", logs)
	}
	return cmd.Process.Pid
}
