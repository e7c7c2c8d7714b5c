package baseline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-go/pulse/internal/fleet"
)

// The fan-out fleet: the subscribers of pulse's fan-out benchmark, run in a
// child process so that the benchmark's process holds only the server. The
// same fleet subscribes to both sides and handles their messages the same
// way; only the dial differs.
//
// Every subscriber records each measured message it gets: a text message
// starting {"type":"message" whose data holds "seq":N (N > 0) and "t":T,
// the publisher's wall clock in UnixNano. Messages with a negative seq are
// warm-ups, counted per subscriber by the most recent one seen.
//
// It is the fleet named "fanout" of package internal/fleet, which runs it
// in a child process. Its ready line comes once every subscriber is
// connected (and, for pulse, subscribed). To "warm W MS" it answers
// "fanout: warm K LOST" once every subscriber has had warm-up W (seq -W),
// or MS milliseconds have passed: K subscribers have had it, LOST
// connections have ended. To "count D MS" it answers "fanout: count N
// LOST" once N >= D measured deliveries have come, or MS milliseconds have
// passed. When its input ends it closes every connection and its done
// line holds a FanoutSummary in JSON.

// The fleet's modes: how a subscriber speaks to the server.
const (
	// FleetPulse dials with the pulse.v1 subprotocol, subscribes to the
	// room's channel, and answers the app-level ping with a pong.
	FleetPulse = "pulse"
	// FleetPlain dials with no subprotocol; gorilla answers ping frames.
	FleetPlain = "plain"
)

// FleetChannel is the channel a pulse-mode subscriber subscribes to.
const FleetChannel = "room"

// FleetName starts each line of the fan-out fleet's protocol.
const FleetName = "fanout"

// FanoutSummary is what a fleet has measured, latencies in nanoseconds.
type FanoutSummary struct {
	Deliveries int64 `json:"deliveries"` // measured messages received, all subscribers
	Lost       int64 `json:"lost"`       // connections that ended before the fleet stopped
	// Latency of each delivery: receive time - send time.
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
	// Latency of each publication until the last subscriber had it, over
	// the Complete publications that every subscriber had.
	LastP50  int64 `json:"last_p50"`
	LastP99  int64 `json:"last_p99"`
	LastMax  int64 `json:"last_max"`
	Complete int   `json:"complete"`
	LastRecv int64 `json:"last_recv"` // wall clock UnixNano of the last delivery
}

// Messages the fleet recognises.
var (
	fleetMessage    = []byte(`{"type":"message"`)
	fleetSubscribed = []byte(`{"type":"subscribed"`)
	fleetError      = []byte(`{"type":"error"`)
	fleetPing       = []byte(`{"type":"ping"}`)
	fleetPong       = []byte(`{"type":"pong"}`)
)

// sample is one measured delivery.
type sample struct {
	seq     int32
	latency int64
}

// subscriber is one connection of the fleet.
type subscriber struct {
	ws *websocket.Conn
	// Owned by the subscriber's reader; read by others only after it ended.
	samples  []sample
	lastRecv int64
	// The most recent warm-up seen, read by the command loop.
	warm atomic.Int64
}

// fanoutFleet is the state shared by the subscribers' readers.
type fanoutFleet struct {
	mode       string
	subs       []*subscriber
	readers    sync.WaitGroup
	stopping   atomic.Bool
	lost       atomic.Int64
	delivered  atomic.Int64
	subscribed atomic.Int64
	failure    atomic.Pointer[string] // the first error message a server sent

	// changed receives a value (if none is pending) whenever a count above
	// moves or a warm-up arrives: the waits of the command loop wake on it.
	changed chan struct{}
}

// note wakes a wait of the command loop.
func (f *fanoutFleet) note() {
	select {
	case f.changed <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// waitFor waits until done reports true, or patience has passed.
func (f *fanoutFleet) waitFor(patience time.Duration, done func() bool) bool {
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for !done() {
		select {
		case <-f.changed:
		case <-deadline.C:
			return done()
		}
	}
	return true
}

// RunFanoutFleet connects n subscribers to url speaking mode (FleetPulse
// or FleetPlain), and speaks the fleet's line protocol on in and out until
// in ends. It fails if a subscriber cannot connect or subscribe, or if a
// server answers with an error message.
func RunFanoutFleet(mode, url string, n int, in io.Reader, out io.Writer) error {
	if mode != FleetPulse && mode != FleetPlain {
		return fmt.Errorf("fan-out fleet: unknown mode %q", mode)
	}
	f := &fanoutFleet{mode: mode, subs: make([]*subscriber, n), changed: make(chan struct{}, 1)}
	dialer := &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
	}
	if mode == FleetPulse {
		dialer.Subprotocols = []string{"pulse.v1"}
	}
	err := DialAll(n, func(i int) error { return f.dial(dialer, url, i) })
	if err == nil && mode == FleetPulse {
		err = f.awaitSubscribed(n, 60*time.Second)
	}
	if err != nil {
		f.closeAll()
		return err
	}
	if err := fleet.Serve(FleetName, in, out, f.answer, f.stop); err != nil {
		return err
	}
	if msg := f.failure.Load(); msg != nil {
		return fmt.Errorf("fan-out fleet: the server sent %s", *msg)
	}
	return nil
}

// dial connects subscriber i and starts its reader.
func (f *fanoutFleet) dial(dialer *websocket.Dialer, url string, i int) error {
	ws, resp, err := dialer.Dial(url, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	resp.Body.Close()
	s := &subscriber{ws: ws}
	f.subs[i] = s
	if f.mode == FleetPulse {
		if ws.Subprotocol() != "pulse.v1" {
			ws.Close()
			return fmt.Errorf("dial %s: subprotocol %q, want pulse.v1", url, ws.Subprotocol())
		}
		subscribe := []byte(`{"type":"subscribe","channel":"` + FleetChannel + `"}`)
		if err := ws.WriteMessage(websocket.TextMessage, subscribe); err != nil {
			ws.Close()
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	f.readers.Go(func() { f.read(s) })
	return nil
}

// read handles one subscriber's messages until its connection ends. It is
// the connection's only writer once dial has subscribed.
func (f *fanoutFleet) read(s *subscriber) {
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			if !f.stopping.Load() {
				f.lost.Add(1)
				f.note()
			}
			return
		}
		now := time.Now().UnixNano()
		switch {
		case bytes.HasPrefix(data, fleetMessage):
			f.record(s, data, now)
		case bytes.Equal(data, fleetPing):
			s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			s.ws.WriteMessage(websocket.TextMessage, fleetPong) // a failed pong shows as a failed read
		case bytes.HasPrefix(data, fleetSubscribed):
			f.subscribed.Add(1)
			f.note()
		case bytes.HasPrefix(data, fleetError):
			msg := string(data)
			f.failure.CompareAndSwap(nil, &msg)
			f.note()
		}
	}
}

// record notes one delivery received at now.
func (f *fanoutFleet) record(s *subscriber, data []byte, now int64) {
	seq, ok1 := intAfter(data, `"seq":`)
	sent, ok2 := intAfter(data, `"t":`)
	switch {
	case !ok1 || !ok2:
		msg := "a message without seq and t: " + string(data)
		f.failure.CompareAndSwap(nil, &msg)
		f.note()
	case seq < 0:
		s.warm.Store(-seq)
		f.note()
	default:
		s.samples = append(s.samples, sample{seq: int32(seq), latency: now - sent})
		s.lastRecv = now
		f.delivered.Add(1)
		f.note()
	}
}

// intAfter parses the integer that follows key in data.
func intAfter(data []byte, key string) (int64, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	end := 0
	for end < len(rest) && (rest[end] == '-' || rest[end] >= '0' && rest[end] <= '9') {
		end++
	}
	v, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return v, err == nil
}

// awaitSubscribed waits until n subscribe answers have come.
func (f *fanoutFleet) awaitSubscribed(n int, patience time.Duration) error {
	failed := func() bool { return f.failure.Load() != nil }
	f.waitFor(patience, func() bool { return failed() || f.subscribed.Load() >= int64(n) })
	if msg := f.failure.Load(); msg != nil {
		return fmt.Errorf("subscribe: the server sent %s", *msg)
	}
	if got := f.subscribed.Load(); got < int64(n) {
		return fmt.Errorf("subscribe: %d of %d subscribed after %v", got, n, patience)
	}
	return nil
}

// answer answers a command of the protocol: "count D MS" or "warm W MS".
func (f *fanoutFleet) answer(verb, args string) (string, bool) {
	var arg, ms int64
	if n, _ := fmt.Sscanf(args, "%d %d", &arg, &ms); n < 1 {
		return "", false
	}
	patience := time.Duration(ms) * time.Millisecond
	switch verb {
	case "count":
		f.waitFor(patience, func() bool { return f.delivered.Load() >= arg })
		return fmt.Sprintf("%d %d", f.delivered.Load(), f.lost.Load()), true
	case "warm":
		f.waitFor(patience, func() bool { return f.warmed(arg) == len(f.subs) })
		return fmt.Sprintf("%d %d", f.warmed(arg), f.lost.Load()), true
	}
	return "", false
}

// stop closes every connection and returns the summary in JSON.
func (f *fanoutFleet) stop() string {
	f.closeAll()
	summary, err := json.Marshal(f.summary())
	if err != nil {
		panic(err) // a struct of integers always marshals
	}
	return string(summary)
}

// warmed counts the subscribers that have had warm-up w.
func (f *fanoutFleet) warmed(w int64) int {
	k := 0
	for _, s := range f.subs {
		if s.warm.Load() >= w {
			k++
		}
	}
	return k
}

// closeAll closes every connection and waits for the readers.
func (f *fanoutFleet) closeAll() {
	f.stopping.Store(true)
	for _, s := range f.subs {
		if s != nil {
			s.ws.Close()
		}
	}
	f.readers.Wait()
}

// summary computes the percentiles; the readers have ended.
func (f *fanoutFleet) summary() FanoutSummary {
	sum := FanoutSummary{Deliveries: f.delivered.Load(), Lost: f.lost.Load()}
	var (
		all   = make([]int64, 0, sum.Deliveries)
		last  []int64 // by seq: the latency of its last delivery
		count []int   // by seq: its deliveries
	)
	for _, s := range f.subs {
		sum.LastRecv = max(sum.LastRecv, s.lastRecv)
		for _, d := range s.samples {
			all = append(all, d.latency)
			if n := int(d.seq) + 1; n > len(last) {
				last = append(last, make([]int64, n-len(last))...)
				count = append(count, make([]int, n-len(count))...)
			}
			last[d.seq] = max(last[d.seq], d.latency)
			count[d.seq]++
		}
	}
	var complete []int64
	for seq, c := range count {
		if c == len(f.subs) {
			complete = append(complete, last[seq])
		}
	}
	sum.P50, sum.P99, sum.Max = percentiles(all)
	sum.LastP50, sum.LastP99, sum.LastMax = percentiles(complete)
	sum.Complete = len(complete)
	return sum
}

// percentiles returns the nearest-rank p50, p99 and max of v, sorting it.
func percentiles(v []int64) (p50, p99, top int64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	slices.Sort(v)
	rank := func(q float64) int64 { return v[max(int(math.Ceil(q*float64(len(v))))-1, 0)] }
	return rank(0.50), rank(0.99), v[len(v)-1]
}
