//go:build unix

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestBinarySIGTERM builds the pulse binary and checks the operator's view
// of a deploy: SIGTERM closes a connected client with 1012 and the process
// exits 0.
func TestBinarySIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin := buildPulse(ctx, t)

	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--drain-window", "200ms")
	cmd.WaitDelay = wait
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs, addrs, logEnd := &logLines{}, make(chan string, 1), make(chan struct{})
	go func() {
		defer close(logEnd)
		logs.read(stderr, addrs)
	}()
	// Wait closes the pipe, so the log is read to its end first.
	exited := sync.OnceValue(func() error { <-logEnd; return cmd.Wait() })
	t.Cleanup(func() {
		cmd.Process.Kill() // a no-op once it has exited
		exited()
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})

	var addr string
	select {
	case addr = <-addrs:
	case <-logEnd:
		t.Fatal("pulse exited without logging msg=listening")
	case <-time.After(wait):
		t.Fatal("no msg=listening line logged")
	}
	ws := dial(t, "ws://"+addr+"/echo")
	write(t, ws, websocket.TextMessage, "hi")
	read(t, ws) // the connection is open on the server

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, ws); ce.Code != websocket.CloseServiceRestart {
		t.Fatalf("close = %v, want 1012 (service restart)", ce)
	}
	select {
	case <-logEnd:
	case <-time.After(wait):
		t.Fatal("pulse did not exit after SIGTERM")
	}
	if err := exited(); err != nil {
		t.Fatalf("pulse exited with %v, want 0", err)
	}
}

// buildPulse builds this package into a temporary directory with the go
// tool on PATH, the one running the test.
func buildPulse(ctx context.Context, t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool on PATH to build the binary with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "pulse")
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
