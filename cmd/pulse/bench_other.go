//go:build !unix

package main

import (
	"errors"
	"os"
	"os/exec"
)

// Elsewhere than Unix, pulse bench knows no file limit and cannot signal
// a server: storm takes --chaos or a --restart-cmd without --pid.

var errNotUnix = errors.New("bench: this needs a Unix system")

// fileLimit is unknown here: as much as the bench may want.
func fileLimit() (soft, hard uint64, err error) { return 1 << 20, 1 << 20, nil }

func terminate(int) error { return errNotUnix }

func processGone(pid int) bool {
	p, err := os.FindProcess(pid)
	return err != nil || p == nil
}

func reap(cmd *exec.Cmd) { cmd.Process.Release() }
