package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
)

// Checks before and during a run that turn a bad start into a sentence.

// isLoopbackHost reports whether host names this machine: localhost or a
// loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fileLimit is this process's limit on open files (Go raises the soft
// limit to the hard one at start).
func fileLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	return rl.Cur, rl.Max, nil
}

// pidFileLimit reads the soft limit on open files of process pid from
// /proc/PID/limits.
func pidFileLimit(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				return strconv.ParseUint(fields[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no open-files line in /proc/%d/limits", pid)
}

// checkFiles refuses a run whose connections cannot all be open: each is
// one file in the server (checked when --pid names it) and one in the
// process holding it (beyond --per-process, children hold them).
func (b *bench) checkFiles() error {
	soft, hard, err := fileLimit()
	if err != nil {
		return err
	}
	if b.cfg.perProcess == 0 {
		b.cfg.perProcess = max(int(soft)-benchFileReserve, 0)
	}
	if b.cfg.perProcess < 1 || uint64(b.cfg.perProcess)+benchFileReserve > soft {
		return &fileLimitError{who: "this process", limit: soft, hard: hard, need: uint64(b.cfg.perProcess) + benchFileReserve}
	}
	if b.cfg.pid == 0 {
		return nil
	}
	limit, err := pidFileLimit(b.cfg.pid)
	if err != nil {
		return fmt.Errorf("bench: --pid %d: %w", b.cfg.pid, err)
	}
	if need := uint64(b.connections()) + 16; limit < need {
		return &fileLimitError{who: fmt.Sprintf("the server (pid %d)", b.cfg.pid), limit: limit, hard: hard, need: need}
	}
	return nil
}

// connections is how many connections the scenario opens at once.
func (b *bench) connections() int {
	switch b.cfg.scenario {
	case "fanout":
		return b.cfg.subscribers + b.cfg.publishers
	case "latency":
		return b.cfg.n + 1
	case "upgrades":
		return b.cfg.concurrency
	}
	return b.cfg.n
}

// fileLimitError is a limit on open files too low for the run.
type fileLimitError struct {
	who        string
	limit      uint64
	hard, need uint64
}

func (e *fileLimitError) Error() string {
	return fmt.Sprintf("bench: %s may open at most %d files and this run needs %d; raise the limit with "+
		"\"ulimit -n %d\" in the shell that starts it (this machine's hard limit is %d per process; "+
		"past it, spread the server over several processes)", e.who, e.limit, e.need, min(e.need, e.hard), e.hard)
}

// errNotPulse is a server that upgraded without the subprotocol pulse.v1.
var errNotPulse = errors.New("the server does not speak " + pulse.Subprotocol + " (it upgraded without the subprotocol); " +
	"for a plain WebSocket endpoint, such as an echo server, use --raw")

// explainDial turns a failed dial into a sentence a user can act on.
func explainDial(url string, err error, resp *websocketResponse) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection to %s refused: is the server running, on that port?", url)
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("dial %s: out of files (%w); raise the limit with ulimit -n", url, err)
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil:
		return fmt.Errorf("%s refused the WebSocket upgrade: HTTP %s (is this the WebSocket path?)", url, resp.status)
	case errors.As(err, &errno) && errno == syscall.EADDRNOTAVAIL:
		return fmt.Errorf("dial %s: no source port left (%w); spread the connections over more source addresses", url, err)
	}
	return fmt.Errorf("dial %s: %w", url, err)
}

// websocketResponse is the part of a refused upgrade's response kept for
// the error.
type websocketResponse struct{ status string }
