package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/client"
)

// console is "pulse connect" on a pulse.v1 endpoint: a client.Client, the
// lines typed or piped in, and what it prints.
type console struct {
	// Set by newConsole, never changes.
	cfg  *connectConfig
	p    *printer
	c    *client.Client
	pubs chan publishLine // to the publisher, in order
	wg   sync.WaitGroup   // subscribes and pings in flight

	failed atomic.Int64 // publishes that failed

	mu          sync.Mutex // guards the fields below
	to          string     // where plain lines are published
	reconnectAt time.Time  // while reconnecting: when the next dial is due
}

type publishLine struct{ channel, data string }

func newConsole(cfg *connectConfig, p *printer) *console {
	k := &console{cfg: cfg, p: p, pubs: make(chan publishLine, 64), to: cfg.publishTo}
	k.c = client.New(cfg.url, &client.Options{
		HandshakeTimeout: cfg.handshake,
		QueueSize:        cfg.queue,
		Name:             cfg.name,
		OnState:          k.onState,
		OnMessage:        func(m client.Message) { p.message("%s %s", m.Channel, m.Data) },
		OnSubscribed:     k.onSubscribed,
		OnPresence:       k.onPresence,
	})
	return k
}

// connectPulse runs the console until stdin ends (after every publish
// read has been answered), /quit, ctx ends, or the server ends the session
// for good, which is returned as the error, as is a count of the
// publishes that failed.
func connectPulse(ctx context.Context, cfg *connectConfig, in *lines, p *printer) error {
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	k := newConsole(cfg, p)
	runDone := goResult(func() error { return k.c.Run(runCtx) })
	pubDone := goResult(func() error { k.publisher(runCtx); return nil })
	tickDone := goResult(func() error { k.ticker(runCtx); return nil })
	if p.interactive {
		p.status("%s", connectHelp)
	}
	for _, channel := range cfg.channels {
		k.subscribe(runCtx, channel)
	}
	runErr, ran := k.loop(runCtx, in, runDone, stopRun)
	close(k.pubs)
	<-pubDone
	stopRun()
	if !ran {
		runErr = <-runDone
	}
	<-tickDone
	k.wg.Wait()
	if err := k.failure(runErr); err != nil {
		return err
	}
	if n := k.failed.Load(); n > 0 && ctx.Err() == nil {
		return fmt.Errorf("connect: %d publishes failed", n)
	}
	return nil
}

// loop reads lines until the input ends or Run returns; ran reports
// whether it received Run's result.
func (k *console) loop(ctx context.Context, in *lines, runDone <-chan error, stopRun func()) (err error, ran bool) {
	for {
		select {
		case line, ok := <-in.c:
			if !ok {
				return nil, false
			}
			if k.command(ctx, line) {
				stopRun()
				return nil, false
			}
		case err := <-runDone:
			return err, true
		case <-ctx.Done():
			return nil, false
		}
	}
}

// failure says why the session ended for good, or nil.
func (k *console) failure(err error) error {
	var ce *pulse.CloseError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrNotPulse):
		return err
	case errors.As(err, &ce):
		return fmt.Errorf("connect: the server closed the connection with %v, which means do not reconnect: %s", ce.Code, ce.Reason)
	}
	return fmt.Errorf("connect: %w", err)
}

// command runs one line; it reports true for /quit.
func (k *console) command(ctx context.Context, line string) bool {
	if rest, ok := strings.CutPrefix(line, "//"); ok {
		k.publish("/" + rest)
		return false
	}
	if !strings.HasPrefix(line, "/") {
		k.publish(line)
		return false
	}
	verb, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch verb {
	case "/quit", "/exit":
		return true
	case "/sub":
		k.subscribe(ctx, arg)
		k.mu.Lock()
		if k.to == "" {
			k.to = arg
		}
		k.mu.Unlock()
	case "/unsub":
		k.c.Unsubscribe(arg)
		k.p.status("unsubscribed %s", arg)
	case "/pub":
		channel, data, _ := strings.Cut(arg, " ")
		k.pubs <- publishLine{channel, data}
	case "/to":
		k.mu.Lock()
		k.to = arg
		k.mu.Unlock()
	case "/ping":
		k.wg.Go(func() { k.ping(ctx) })
	case "/state":
		k.p.status("%v, generation %d, rtt %v", k.c.State(), k.c.Generation(), k.c.RTT())
	default:
		k.p.status("%s", connectHelp)
	}
	return false
}

// publish sends a plain line to the current channel.
func (k *console) publish(line string) {
	k.mu.Lock()
	to := k.to
	k.mu.Unlock()
	if to == "" {
		k.p.status("no channel to publish to: use --publish, --channel, /sub or /to")
		return
	}
	k.pubs <- publishLine{to, line}
}

// publisher publishes lines one after another, each once acknowledged.
func (k *console) publisher(ctx context.Context) {
	for l := range k.pubs {
		res, err := k.c.Publish(ctx, l.channel, payload(l.data), nil)
		switch {
		case err != nil && ctx.Err() == nil:
			k.failed.Add(1)
			k.p.status("publish to %s failed: %v", l.channel, err)
		case err == nil:
			k.p.status("ack %s %s:%d%s", l.channel, res.Pos.Epoch, res.Pos.Offset, map[bool]string{true: " (duplicate)"}[res.Duplicate])
		}
	}
}

func (k *console) subscribe(ctx context.Context, channel string) {
	k.wg.Go(func() {
		var refused *client.ServerError // reported by onSubscribed
		if _, err := k.c.Subscribe(ctx, channel, nil); err != nil && ctx.Err() == nil && !errors.Is(err, client.ErrClosed) && !errors.As(err, &refused) {
			k.p.status("subscribe %s failed: %v", channel, err)
		}
	})
}

func (k *console) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rtt, err := k.c.Ping(ctx)
	if err != nil {
		k.p.status("ping: %v", err)
		return
	}
	k.p.status("rtt %v", rtt.Round(time.Microsecond))
}

// ticker, in a terminal, counts down to the next dial every second and
// measures the round trip every --ping.
func (k *console) ticker(ctx context.Context) {
	if !k.p.interactive {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			k.tick(ctx, now, &lastPing)
		}
	}
}

func (k *console) tick(ctx context.Context, now time.Time, lastPing *time.Time) {
	k.mu.Lock()
	at := k.reconnectAt
	k.mu.Unlock()
	switch state := k.c.State(); {
	case state == client.StateReconnecting && at.After(now):
		k.p.status("reconnecting in %v", at.Sub(now).Round(time.Second))
	case state == client.StateOpen && k.cfg.ping > 0 && now.Sub(*lastPing) >= k.cfg.ping:
		*lastPing = now
		k.ping(ctx)
	}
}

func (k *console) onState(ch client.StateChange) {
	switch ch.State {
	case client.StateConnecting:
		k.p.status("connecting to %s", k.cfg.url)
	case client.StateOpen:
		k.p.status("open (generation %d)", ch.Generation)
	case client.StateDegraded:
		k.p.status("degraded: nothing heard from the server for an interval; probing")
	case client.StateReconnecting:
		k.mu.Lock()
		k.reconnectAt = time.Now().Add(ch.Delay)
		k.mu.Unlock()
		k.p.status("lost: %v; reconnecting in %v", ch.Err, ch.Delay.Round(time.Millisecond))
	case client.StateClosed:
		k.p.status("closed")
	}
}

func (k *console) onSubscribed(ev client.Subscribed) {
	switch {
	case ev.Err != nil:
		k.p.status("subscription to %s refused: %v", ev.Channel, ev.Err)
	case !ev.Resumed:
		k.p.status("subscribed %s at %s:%d", ev.Channel, ev.Position.Epoch, ev.Position.Offset)
	case ev.Recovered:
		k.p.status("resumed %s: missed messages replayed, nothing lost", ev.Channel)
	default:
		k.p.status("resumed %s: RECOVERY IMPOSSIBLE (history lost or too old); now at %s:%d, refetch your state", ev.Channel, ev.Position.Epoch, ev.Position.Offset)
	}
}

func (k *console) onPresence(channel string, m client.Member, joined bool) {
	verb := "left"
	if joined {
		verb = "joined"
	}
	k.p.status("%s: %s (%s) %s", channel, m.Client, m.ID, verb)
}
