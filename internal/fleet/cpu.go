//go:build unix

package fleet

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the user+system CPU time the fleet's process has used so far,
// from /proc (Linux). In process it is unknown: an error.
func (f *Fleet) CPUTime() (time.Duration, error) {
	if f.pid == 0 {
		return 0, errors.New("fleet: in process, its CPU time is this process's")
	}
	return pidCPU(f.pid)
}

// pidCPU reads the CPU time of process pid from /proc/PID/stat.
func pidCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, after, _ := strings.Cut(string(stat), ") ") // the command may hold spaces
	fields := strings.Fields(after)                // from field 3, state
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	user, err1 := strconv.ParseInt(fields[11], 10, 64)
	sys, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const userHZ = 100 // clock ticks per second of /proc on Linux
	return time.Duration(user+sys) * time.Second / userHZ, nil
}

// SelfCPU is the user and the system CPU time this process has used so
// far: with the fleet in a child, the server's.
func SelfCPU() (user, sys time.Duration, err error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), nil
}
