package main

import (
	"context"
	"encoding/json"
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
// lines typed or piped in, and what it prints. Lines take effect in the
// order they were typed: each command acts on the client before the next
// line is read (subscribes and publishes are queued in the client, which
// sends them in that order); only the answers are awaited elsewhere.
type console struct {
	// Set by newConsole, never changes.
	cfg     *connectConfig
	p       *printer
	c       *client.Client
	runCtx  context.Context    // Run's
	stopRun context.CancelFunc // ends Run
	acks    chan pending       // to the acker, in publish order; closed by connectPulse
	pings   sync.WaitGroup     // /ping calls in flight

	failed   atomic.Int64           // publishes refused or failed
	unacked  atomic.Int64           // publishes still unacknowledged when --wait ran out
	notPulse atomic.Pointer[string] // why the endpoint does not speak pulse.v1, set by welcomeCheck
	ready    chan struct{}          // closed at the first welcome
	readyOne sync.Once              // closes ready

	held []string // owned by loop: lines read before the first welcome, not yet run

	mu          sync.Mutex // guards the fields below
	to          string     // where plain lines are published
	reconnectAt time.Time  // while reconnecting: when the next dial is due
	wasOpen     bool       // the last connection was welcomed: its end is a loss
}

// pending is one publish sent, awaiting its ack.
type pending struct {
	channel string
	ack     *client.Ack
}

func newConsole(ctx context.Context, cfg *connectConfig, p *printer) *console {
	k := &console{cfg: cfg, p: p, acks: make(chan pending, cfg.queue+1), ready: make(chan struct{}), to: cfg.publishTo}
	k.runCtx, k.stopRun = context.WithCancel(ctx)
	k.c = client.New(cfg.url, &client.Options{
		Dial:             k.dial,
		HandshakeTimeout: cfg.handshake,
		QueueSize:        cfg.queue,
		Name:             cfg.name,
		Token:            cfg.tokenFunc(),
		OnState:          k.onState,
		OnMessage:        func(m client.Message) { p.message("%s %s", m.Channel, m.Data) },
		OnSubscribed:     k.onSubscribed,
		OnPresence:       k.onPresence,
	})
	return k
}

// connectPulse runs the console until stdin ends, /quit, ctx ends, or the
// server ends the session for good, which is returned as the error. At
// /quit or the end of the input it waits up to --wait for every publish to
// be acknowledged; a publish that failed or was not acknowledged in time
// makes the error. Every message that arrived before the last ack has been
// printed by then: the client hands messages and acks over in the order
// they arrived.
func connectPulse(ctx context.Context, cfg *connectConfig, in *lines, p *printer) error {
	k := newConsole(ctx, cfg, p)
	defer k.stopRun()
	ackCtx, stopAcks := context.WithCancel(ctx)
	defer stopAcks()
	runDone := goResult(func() error { return k.c.Run(k.runCtx) })
	ackDone := goResult(func() error { k.acker(ctx, ackCtx); return nil })
	tickDone := goResult(func() error { k.ticker(k.runCtx); return nil })
	if p.interactive {
		p.status("%s", connectHelp)
	}
	for _, channel := range cfg.channels {
		k.subscribe(channel)
	}
	runErr, ran := k.loop(in, runDone)
	close(k.acks)
	bound := time.AfterFunc(cfg.wait, stopAcks)
	<-ackDone
	bound.Stop()
	k.stopRun()
	if !ran {
		runErr = <-runDone
	}
	<-tickDone
	k.pings.Wait()
	return k.result(ctx, runErr)
}

// result is connectPulse's error once everything has ended.
func (k *console) result(ctx context.Context, runErr error) error {
	if k.c.Generation() == 0 && ctx.Err() == nil {
		if reason := k.notPulse.Load(); reason != nil {
			return &notPulseError{accepted: true, reason: *reason, held: k.held}
		}
		if errors.Is(runErr, client.ErrNotPulse) {
			return &notPulseError{held: k.held}
		}
	}
	if err := k.failure(runErr); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	var problems []string
	if n := k.failed.Load(); n > 0 {
		problems = append(problems, plural(n, "publish", "publishes")+" failed")
	}
	if n := unsent(k.held); n > 0 {
		problems = append(problems, fmt.Sprintf("no connection within %v (--handshake-timeout + --wait): %s not sent", k.cfg.handshake+k.cfg.wait, plural(n, "line", "lines")))
	}
	if n := k.unacked.Load(); n > 0 {
		problems = append(problems, fmt.Sprintf("%s not acknowledged within %v (--wait)", plural(n, "publish", "publishes"), k.cfg.wait))
	}
	if len(problems) > 0 {
		return fmt.Errorf("connect: %s", strings.Join(problems, "; "))
	}
	return nil
}

// unsent counts the held lines other than /quit.
func unsent(held []string) int64 {
	var n int64
	for _, line := range held {
		if line != "/quit" {
			n++
		}
	}
	return n
}

// plural says "1 publish" or "2 publishes".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
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
func (k *console) command(line string) bool {
	if rest, ok := strings.CutPrefix(line, "//"); ok {
		k.publishPlain("/" + rest)
		return false
	}
	if !strings.HasPrefix(line, "/") {
		k.publishPlain(line)
		return false
	}
	verb, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch verb {
	case "/quit", "/exit":
		return true
	case "/sub", "/unsub", "/pub", "/to":
		if arg == "" {
			k.p.status("%s needs a channel: %s", verb, connectHelp)
			return false
		}
		k.channelCommand(verb, arg)
	case "/ping":
		k.pings.Go(func() { k.ping(k.runCtx) })
	case "/state":
		k.p.status("%v, generation %d, rtt %v", k.c.State(), k.c.Generation(), k.c.RTT())
	default:
		k.p.status("unknown command %s; %s", verb, connectHelp)
	}
	return false
}

// channelCommand runs /sub, /unsub, /pub or /to with its argument.
func (k *console) channelCommand(verb, arg string) {
	switch verb {
	case "/sub":
		k.subscribe(arg)
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
		k.publish(channel, data)
	case "/to":
		k.mu.Lock()
		k.to = arg
		k.mu.Unlock()
		k.p.status("plain lines now go to %s", arg)
	}
}

// publishPlain publishes a plain line to the current channel.
func (k *console) publishPlain(line string) {
	k.mu.Lock()
	to := k.to
	k.mu.Unlock()
	if to == "" {
		k.p.status("no channel to publish to: use --publish, --channel, /sub or /to")
		return
	}
	k.publish(to, line)
}

// publish queues a publish in the client and hands its ack to the acker.
func (k *console) publish(channel, data string) {
	ack, err := k.c.Send(channel, payload(data), nil)
	if err != nil {
		k.failed.Add(1)
		k.p.status("%v", err)
		return
	}
	k.acks <- pending{channel, ack}
}

// acker waits for the acks in publish order and prints them. ackCtx ends
// --wait after the input did, or with ctx (an interrupt, which is not a
// failure).
func (k *console) acker(ctx, ackCtx context.Context) {
	for a := range k.acks {
		res, err := a.ack.Wait(ackCtx)
		switch {
		case err == nil:
			k.p.status("ack %s %s:%d%s", a.channel, res.Pos.Epoch, res.Pos.Offset, map[bool]string{true: " (duplicate)"}[res.Duplicate])
		case ctx.Err() != nil:
		case ackCtx.Err() != nil:
			k.unacked.Add(1)
		default:
			k.failed.Add(1)
			k.p.status("publish to %s failed: %v", a.channel, err)
		}
	}
}

// subscribe asks the client for channel at once and returns: Subscribe
// with an ended context registers the subscription and returns without
// waiting for the server (client.Subscribe: "If ctx ends first the
// subscription stays requested"), so a later /unsub comes after it.
// onSubscribed reports the server's answer.
func (k *console) subscribe(channel string) {
	now, cancel := context.WithCancel(k.runCtx)
	cancel()
	_, err := k.c.Subscribe(now, channel, nil)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, client.ErrClosed) {
		k.p.status("%v", err)
	}
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
		k.setOpen(true)
		k.readyOne.Do(func() { close(k.ready) })
		k.p.status("open (generation %d)", ch.Generation)
	case client.StateDegraded:
		k.p.status("degraded: nothing heard from the server for an interval; probing")
	case client.StateReconnecting:
		k.onReconnecting(ch)
	case client.StateClosed:
		notPulse := k.notPulse.Load() != nil || errors.Is(ch.Err, client.ErrNotPulse)
		if !notPulse || ch.Generation > 0 { // else connect says why
			k.p.status("closed")
		}
	}
}

// onReconnecting reports a loss, or a dial that failed, with the wait
// before the next dial; a first connection that showed the server does
// not speak pulse.v1 ends Run instead.
func (k *console) onReconnecting(ch client.StateChange) {
	if ch.Generation == 0 && k.notPulse.Load() != nil {
		k.stopRun()
		return
	}
	k.mu.Lock()
	k.reconnectAt = time.Now().Add(ch.Delay)
	k.mu.Unlock()
	delay := ch.Delay.Round(time.Millisecond)
	if k.setOpen(false) {
		k.p.status("lost: %v; reconnecting in %v", ch.Err, delay)
		return
	}
	k.p.status("cannot connect: %v; retrying in %v", ch.Err, delay)
}

// setOpen records whether a connection is open and returns the old value.
func (k *console) setOpen(open bool) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	was := k.wasOpen
	k.wasOpen = open
	return was
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

// isWelcome reports whether data is a pulse.v1 welcome.
func isWelcome(data []byte) bool { return jsonType(data) == "welcome" }

// jsonType returns the "type" of a JSON object, or "".
func jsonType(data []byte) string {
	var m struct{ Type string }
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return m.Type
}
