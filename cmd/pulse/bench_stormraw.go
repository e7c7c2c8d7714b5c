package main

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/pulse-go/pulse/client"
)

// The storm's baseline (--baseline, with --chaos): as many plain
// WebSocket clients against the gorilla chat pattern, cut the same way by
// the chaos proxy, each reconnecting with the Go client's full-jitter
// backoff (client.Backoff with its default base and cap, the attempt
// count reset once a connection stayed up DefaultStableAfter). They have
// no positions and no resume: the run has no publisher, and reports how
// long until the clients were back and the most reconnects in a second.
// A raw client drives the same callbacks as a Go client's (storm.state),
// so that both runs count alike.

// runRaw is a raw client's life: dial, hold the connection (answering
// the server's pings) until it ends, back off, again, until ctx ends.
func (s *storm) runRaw(ctx context.Context, sc *stormClient) {
	d := &benchDialer{url: s.url, raw: true}
	if s.local != nil {
		d.local = &net.TCPAddr{IP: s.local}
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if c, err := d.dial(ctx, 10*time.Second); err == nil {
			if s.holdRaw(ctx, sc, c) {
				attempt = 0
			}
		}
		sleepCtx(ctx, client.Backoff(attempt, client.DefaultBackoffBase, client.DefaultBackoffCap, nil))
	}
	s.state(sc, client.StateChange{State: client.StateClosed})
}

// holdRaw holds one connection until it ends or ctx does, and reports
// whether it stayed up long enough to reset the backoff.
func (s *storm) holdRaw(ctx context.Context, sc *stormClient, c *benchConn) (stable bool) {
	opened := time.Now()
	s.state(sc, client.StateChange{State: client.StateOpen})
	stop := context.AfterFunc(ctx, c.close)
	c.read(&s.rawCounts, nil)
	stop()
	c.ws.Close() // gorilla leaves a failed connection's socket open
	s.state(sc, client.StateChange{State: client.StateReconnecting})
	return time.Since(opened) >= client.DefaultStableAfter
}

// startClient starts sc: a Go client, or a raw one.
func (s *storm) startClient(runCtx context.Context, runs *sync.WaitGroup, sc *stormClient) {
	if s.raw {
		runs.Go(func() { s.runRaw(runCtx, sc) })
		return
	}
	runs.Go(func() { sc.c.Run(runCtx) })
}

// firstOpen counts a raw client's first connection as its subscription:
// it has none.
func (s *storm) firstOpen() {
	if s.raw && s.readyN.Add(1) == int64(len(s.clients)) {
		close(s.ready)
	}
}
