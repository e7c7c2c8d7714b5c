//go:build linux

package pulse

import (
	"runtime"
	"testing"
	"time"
)

// idleConns is how many connections TestIdleConnectionsHoldNoGoroutine
// holds: their clients run in a child process, so the server's process
// holds one socket each, well under its 20,000 open files.
const idleConns = 10000

// On the epoll engine, 10,000 idle connections with heartbeats on hold no
// goroutine: the server's goroutine count stays flat while they connect
// and answer their heartbeats. (Heartbeat writers live for one write; a
// few may be caught in flight, well under maxIdleGoroutines.)
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const maxIdleGoroutines = 100 // 1% of the connections
	srv := startPulseBench(t, EngineEpoll, time.Second, 10*time.Second)
	before := runtime.NumGoroutine()
	clients := startFleet(t, srv.url, idleConns)
	awaitConns(t, srv, idleConns)
	clients.await(2)
	after := runtime.NumGoroutine()
	if n := srv.conns(); n != idleConns {
		t.Fatalf("%d connections open, want %d", n, idleConns)
	}
	if after-before > maxIdleGoroutines {
		t.Fatalf("goroutines went from %d to %d with %d idle connections; want at most %d more", before, after, idleConns, maxIdleGoroutines)
	}
	t.Logf("goroutines: %d before, %d with %d idle connections answering heartbeats", before, after, idleConns)
}
