//go:build unix

package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/internal/baseline"
	"github.com/pulse-go/pulse/internal/fleet"
)

// The subscribed fleet: the clients of BenchmarkSubscribedMemory, run in
// child processes (internal/fleet) so that the benchmark's process holds
// only the server. Client i of a fleet is client first+i of the run, in
// room (first+i)/roomSize. In pulse mode it dials with pulse.v1, subscribes
// to the room's channel, roomChannel(room), and answers the app heartbeat;
// in plain mode it dials the room's own URL, roomPath(room), and answers
// ping frames. Each client dials from one of the fleet's source addresses
// in turn, so that no address pair runs short of ports.
//
// It is the fleet named "subscribed". Its ready line comes once every
// client is connected and, in pulse mode, subscribed. To "count" it
// answers "subscribed: count PINGS MIN DELIVERIES LOST": heartbeats
// answered in all, by the client that answered fewest, messages delivered,
// connections lost. Its done line holds the same four numbers.

// subFleetEnv, set to "MODE URL FIRST N ROOM SOURCES" (SOURCES a comma
// separated list of IP addresses), makes TestSubscribedFleet the child.
const subFleetEnv = "PULSE_BENCH_SUBSCRIBED_FLEET"

const subFleetName = "subscribed"

// subFleetSpec is what a subscribed fleet is to do.
type subFleetSpec struct {
	mode     string // baseline.FleetPulse or baseline.FleetPlain
	url      string // the server's URL, ending in "/"
	first, n int    // the run's clients first to first+n-1
	roomSize int
	sources  []string // source IP addresses, used in turn
}

func (s subFleetSpec) String() string {
	return fmt.Sprintf("%s %s %d %d %d %s", s.mode, s.url, s.first, s.n, s.roomSize, strings.Join(s.sources, ","))
}

func parseSubFleetSpec(v string) (subFleetSpec, error) {
	var s subFleetSpec
	var sources string
	if _, err := fmt.Sscanf(v, "%s %s %d %d %d %s", &s.mode, &s.url, &s.first, &s.n, &s.roomSize, &sources); err != nil {
		return s, fmt.Errorf("%s=%q: %w", subFleetEnv, v, err)
	}
	s.sources = strings.Split(sources, ",")
	return s, nil
}

// roomChannel is the pulse channel of a room; roomPath its baseline URL path.
func roomChannel(room int) string { return "room-" + strconv.Itoa(room) }
func roomPath(room int) string    { return "room/" + strconv.Itoa(room) }

// subFleetCount is what a subscribed fleet has seen.
type subFleetCount struct {
	pings, minPings, deliveries, lost int64
}

func (c subFleetCount) String() string {
	return fmt.Sprintf("%d %d %d %d", c.pings, c.minPings, c.deliveries, c.lost)
}

func parseSubFleetCount(v string) (subFleetCount, error) {
	var c subFleetCount
	_, err := fmt.Sscanf(v, "%d %d %d %d", &c.pings, &c.minPings, &c.deliveries, &c.lost)
	return c, err
}

var (
	subAppPing    = []byte(`{"type":"ping"}`)
	subAppPong    = []byte(`{"type":"pong"}`)
	subSubscribed = []byte(`{"type":"subscribed"`)
	subMessage    = []byte(`{"type":"message"`)
	subError      = []byte(`{"type":"error"`)
)

// subFleet is the state of a subscribed fleet's clients.
type subFleet struct {
	spec       subFleetSpec
	conns      []*websocket.Conn // written by the dials; read after DialAll
	pings      []atomic.Int64    // by client
	readers    sync.WaitGroup
	stopping   atomic.Bool
	subscribed atomic.Int64
	deliveries atomic.Int64
	lost       atomic.Int64
	failure    atomic.Pointer[string] // the first error message a server sent
	changed    chan struct{}          // a value when subscribed, lost or failure moved
}

// runSubFleet connects spec's clients and speaks the fleet's protocol on in
// and out until in ends.
func runSubFleet(spec subFleetSpec, in io.Reader, out io.Writer) error {
	f := &subFleet{spec: spec, conns: make([]*websocket.Conn, spec.n), pings: make([]atomic.Int64, spec.n), changed: make(chan struct{}, 1)}
	err := baseline.DialAll(spec.n, f.dial)
	if err == nil && spec.mode == baseline.FleetPulse {
		err = f.awaitSubscribed(60 * time.Second)
	}
	if err != nil {
		f.closeAll()
		return err
	}
	answer := func(verb, _ string) (string, bool) { return f.count().String(), verb == "count" }
	stop := func() string { f.closeAll(); return f.count().String() }
	if err := fleet.Serve(subFleetName, in, out, answer, stop); err != nil {
		return err
	}
	if msg := f.failure.Load(); msg != nil {
		return fmt.Errorf("subscribed fleet: the server sent %s", *msg)
	}
	return nil
}

// dialer is client i's: from its source address, with small buffers.
func (f *subFleet) dialer(i int) *websocket.Dialer {
	local := &net.TCPAddr{IP: net.ParseIP(f.spec.sources[i%len(f.spec.sources)])}
	d := &websocket.Dialer{
		NetDialContext:   (&net.Dialer{LocalAddr: local}).DialContext,
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  512,
	}
	if f.spec.mode == baseline.FleetPulse {
		d.Subprotocols = []string{pulse.Subprotocol}
	}
	return d
}

// dial connects client i, subscribes it in pulse mode and starts its reader.
func (f *subFleet) dial(i int) error {
	room := (f.spec.first + i) / f.spec.roomSize
	url := f.spec.url
	if f.spec.mode == baseline.FleetPlain {
		url += roomPath(room)
	}
	ws, resp, err := f.dialer(i).Dial(url, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	resp.Body.Close()
	f.conns[i] = ws
	if f.spec.mode == baseline.FleetPulse {
		subscribe := []byte(`{"type":"subscribe","channel":"` + roomChannel(room) + `"}`)
		if err := ws.WriteMessage(websocket.TextMessage, subscribe); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	} else {
		ws.SetPingHandler(func(data string) error {
			f.pings[i].Add(1)
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		})
	}
	f.readers.Go(func() { f.read(i, ws) })
	return nil
}

// read handles client i's messages until its connection ends; in pulse
// mode it is the connection's only writer once dial has subscribed.
func (f *subFleet) read(i int, ws *websocket.Conn) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if !f.stopping.Load() {
				f.lost.Add(1)
				f.note()
			}
			return
		}
		switch {
		case bytes.Equal(data, subAppPing):
			f.pings[i].Add(1)
			ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			ws.WriteMessage(websocket.TextMessage, subAppPong) // a failed pong shows as a failed read
		case bytes.HasPrefix(data, subMessage):
			f.deliveries.Add(1)
		case bytes.HasPrefix(data, subSubscribed):
			f.subscribed.Add(1)
			f.note()
		case bytes.HasPrefix(data, subError):
			msg := string(data)
			f.failure.CompareAndSwap(nil, &msg)
			f.note()
		}
	}
}

// note wakes awaitSubscribed.
func (f *subFleet) note() {
	select {
	case f.changed <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// awaitSubscribed waits until every client is subscribed, or fails.
func (f *subFleet) awaitSubscribed(patience time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for f.subscribed.Load() < int64(f.spec.n) {
		if msg := f.failure.Load(); msg != nil {
			return fmt.Errorf("subscribe: the server sent %s", *msg)
		}
		if n := f.lost.Load(); n > 0 {
			return fmt.Errorf("subscribe: %d connections lost", n)
		}
		select {
		case <-f.changed:
		case <-ctx.Done():
			return fmt.Errorf("subscribe: %d of %d subscribed after %v", f.subscribed.Load(), f.spec.n, patience)
		}
	}
	return nil
}

func (f *subFleet) count() subFleetCount {
	c := subFleetCount{minPings: -1, deliveries: f.deliveries.Load(), lost: f.lost.Load()}
	for i := range f.pings {
		p := f.pings[i].Load()
		c.pings += p
		if c.minPings < 0 || p < c.minPings {
			c.minPings = p
		}
	}
	return c
}

// closeAll closes every connection and waits for the readers.
func (f *subFleet) closeAll() {
	f.stopping.Store(true)
	for _, ws := range f.conns {
		if ws != nil {
			ws.Close()
		}
	}
	f.readers.Wait()
}

// subscribedFleet is the benchmark's end of a subscribed fleet.
type subscribedFleet struct {
	tb testing.TB
	*fleet.Fleet
}

func (f *subscribedFleet) count() subFleetCount {
	f.tb.Helper()
	return f.parse(f.Ask("count"))
}

func (f *subscribedFleet) parse(result string) subFleetCount {
	f.tb.Helper()
	c, err := parseSubFleetCount(result)
	if err != nil {
		f.tb.Fatalf("subscribed fleet counts %q: %v", result, err)
	}
	return c
}

// startSubFleet starts spec's fleet in a child process and waits until it
// is ready; when the test ends it is stopped, and a lost connection fails
// the test.
func startSubFleet(tb testing.TB, spec subFleetSpec) *subscribedFleet {
	tb.Helper()
	f := &subscribedFleet{tb, fleet.Start(tb, fleet.Child{
		Name: subFleetName,
		Test: "TestSubscribedFleet",
		Env:  subFleetEnv + "=" + spec.String(),
	})}
	tb.Cleanup(func() { f.stop() })
	return f
}

// stop closes the fleet's clients, failing the test if one was lost.
func (f *subscribedFleet) stop() subFleetCount {
	f.tb.Helper()
	c := f.parse(f.Stop())
	if c.lost > 0 {
		f.tb.Errorf("subscribed fleet: %d connections lost", c.lost)
	}
	return c
}

// TestSubscribedFleet is BenchmarkSubscribedMemory's fleet when subFleetEnv
// is set. Otherwise it checks the fleet and the sides in process: six
// clients in rooms of three, each answering heartbeats and receiving the
// publications of its room only.
func TestSubscribedFleet(t *testing.T) {
	if v := os.Getenv(subFleetEnv); v != "" {
		spec, err := parseSubFleetSpec(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := runSubFleet(spec, os.Stdin, os.Stdout); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, side := range subSides {
		t.Run(side.name, func(t *testing.T) {
			const n, room, rounds = 6, 3, 2
			srv := side.start(t, 20*time.Millisecond, time.Second, n/room)
			spec := subFleetSpec{mode: side.mode, url: srv.url, n: n, roomSize: room, sources: []string{"127.0.0.1"}}
			f := &subscribedFleet{t, fleet.StartInProcess(t, subFleetName, func(in io.Reader, out io.Writer) error {
				return runSubFleet(spec, in, out)
			})}
			awaitSubBench(t, "6 connections", func() bool { return srv.conns() == n })
			srv.publish(1) // room 1: its three clients, not room 0's
			awaitSubBench(t, "heartbeats and deliveries", func() bool {
				c := f.count()
				return c.minPings >= rounds && c.deliveries >= room
			})
			if c := f.stop(); c.deliveries != room || c.lost != 0 {
				t.Errorf("fleet counts %+v, want %d deliveries and none lost", c, room)
			}
		})
	}
}
