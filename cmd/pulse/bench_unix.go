//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// What pulse bench asks of the system, on Unix.

// fileLimit is this process's limit on open files (Go raises the soft
// limit to the hard one at start).
func fileLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	return rl.Cur, rl.Max, nil
}

// terminate sends SIGTERM to process pid.
func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// processGone reports whether process pid has ended: it no longer
// exists, or it is a zombie its parent has not collected yet.
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(after, "Z")
}

// reap collects the restart command if it has ended; one still running
// (the new server itself, perhaps) is left to run.
func reap(cmd *exec.Cmd) {
	var status syscall.WaitStatus
	syscall.Wait4(cmd.Process.Pid, &status, syscall.WNOHANG, nil)
	cmd.Process.Release()
}
