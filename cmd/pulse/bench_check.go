package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
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
	if own := b.ownFiles(); own > b.cfg.perProcess {
		why := b.cfg.scenario + " holds all its connections in this process; use fewer"
		return &fileLimitError{who: "this process", limit: soft, hard: hard, need: uint64(own) + benchFileReserve, why: why}
	}
	if b.cfg.pid == 0 {
		return nil
	}
	limit, err := pidFileLimit(b.cfg.pid)
	if err != nil {
		return fmt.Errorf("bench: --pid %d: %w", b.cfg.pid, err)
	}
	if need := uint64(b.connections()) + 16; limit < need {
		return &fileLimitError{who: fmt.Sprintf("the server (pid %d)", b.cfg.pid), limit: limit, hard: hard, need: need,
			why: "past the hard limit, spread the server over several processes"}
	}
	return nil
}

// ownFiles is how many files this process needs for its connections:
// idle, storm and fanout spread the ones beyond --per-process over
// children (a storm's publisher stays here, through its own proxy with
// --chaos, and a fan-out's publishers); the others hold them all.
func (b *bench) ownFiles() int {
	switch {
	case b.cfg.scenario == "idle":
		return min(b.cfg.n, b.cfg.perProcess)
	case b.cfg.scenario == "storm" && b.connections() > b.stormPerProcess():
		return 3
	case b.cfg.scenario == "storm" && b.cfg.chaos:
		return 3 * b.connections()
	case b.cfg.scenario == "fanout" && !b.cfg.raw && b.connections() > b.cfg.perProcess:
		return b.cfg.publishers
	}
	return b.connections()
}

// connections is how many connections the scenario opens at once.
func (b *bench) connections() int {
	switch b.cfg.scenario {
	case "fanout":
		rooms := 1
		if b.cfg.raw && strings.Contains(b.cfg.url, roomVar) {
			rooms = (b.cfg.subscribers + b.cfg.room - 1) / b.cfg.room // a publisher joins each
		}
		return b.cfg.subscribers + b.cfg.publishers*rooms
	case "latency":
		return b.cfg.n + 1
	case "upgrades":
		return b.cfg.concurrency
	case "storm":
		return b.cfg.n + 1 // and the publisher
	}
	return b.cfg.n
}

// fileLimitError is a limit on open files too low for the run.
type fileLimitError struct {
	who        string
	limit      uint64
	hard, need uint64
	why        string // what else to do, if raising the limit is not enough
}

func (e *fileLimitError) Error() string {
	msg := fmt.Sprintf("bench: %s may open at most %d files and this run needs %d", e.who, e.limit, e.need)
	if e.need <= e.hard {
		msg += fmt.Sprintf("; raise the limit with \"ulimit -n %d\" in the shell that starts it (this machine's hard limit is %d per process)", e.need, e.hard)
	} else {
		msg += fmt.Sprintf(", more than this machine's hard limit of %d per process (ulimit -n cannot go past it)", e.hard)
	}
	if e.why != "" {
		msg += "; " + e.why
	}
	return msg
}

// errNotPulse is a server that upgraded without the subprotocol pulse.v1.
var errNotPulse = errors.New("the server does not speak " + pulse.Subprotocol + " (it upgraded without the subprotocol); " +
	"for a plain WebSocket endpoint, such as an echo server, use --raw")

// serverLimitsHint names the limits of a pulse server that refuse a load
// test's upgrades with HTTP 503, and the flags that lift them.
const serverLimitsHint = "a pulse server limits the connections of one source address " +
	"(pulse serve --max-conns-per-addr, 100 by default), all its connections (--max-conns) " +
	"and the upgrades per second (--upgrade-rate): raise them for a load test from one machine"

// explainDial turns a failed dial into a sentence a user can act on.
func explainDial(url string, err error, resp *websocketResponse) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection to %s refused: is the server running, on that port?", url)
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("dial %s: out of files (%w); raise the limit with ulimit -n", url, err)
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil && resp.code == http.StatusServiceUnavailable:
		return fmt.Errorf("%s refused the upgrade: HTTP %s %q (Retry-After %s); %s",
			url, resp.status, resp.reason, resp.retryAfter, serverLimitsHint)
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil:
		return fmt.Errorf("%s refused the WebSocket upgrade: HTTP %s %s (is this the WebSocket path?)", url, resp.status, resp.reason)
	case errors.As(err, &errno) && errno == syscall.EADDRNOTAVAIL:
		return fmt.Errorf("dial %s: no source port left (%w); spread the connections over more source addresses", url, err)
	}
	return fmt.Errorf("dial %s: %w", url, err)
}

// websocketResponse is the part of a refused upgrade's response kept for
// the error.
type websocketResponse struct {
	status     string
	code       int
	reason     string // the JSON "error" of a pulse server's refusal
	retryAfter string
}
