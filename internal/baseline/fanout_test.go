package baseline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-go/pulse/internal/fleet"
)

// startFanout runs a Fanout behind httptest until the test ends, and
// returns it with its WebSocket URL and a function that ends its Run.
func startFanout(t *testing.T, interval, timeout time.Duration) (*Fanout, string, func()) {
	t.Helper()
	f := NewFanout(interval, timeout)
	f.changed = notifyChange
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		f.Run(ctx)
	}()
	hs := httptest.NewServer(f)
	stop := func() {
		cancel()
		<-ran
	}
	t.Cleanup(func() {
		stop()
		hs.Close()
	})
	return f, "ws" + strings.TrimPrefix(hs.URL, "http"), stop
}

// dialMember connects a client that answers pings (gorilla's default
// handler) while its messages are read with ws.ReadMessage.
func dialMember(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	return ws
}

func readText(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	op, msg, err := ws.ReadMessage()
	if err != nil || op != websocket.TextMessage || string(msg) != want {
		t.Fatalf("read %d %q %v, want text %q", op, msg, err, want)
	}
}

func TestFanoutBroadcastsToEveryMember(t *testing.T) {
	f, url, _ := startFanout(t, time.Minute, time.Minute)
	members := []*websocket.Conn{dialMember(t, url), dialMember(t, url), dialMember(t, url)}
	await(t, "3 members", func() bool { return f.Len() == 3 })
	f.Broadcast([]byte("one"))
	members[0].WriteMessage(websocket.TextMessage, []byte("two")) // a member's message goes to the room
	for _, ws := range members {
		readText(t, ws, "one")
		readText(t, ws, "two")
	}
	members[1].Close()
	await(t, "the closed member unregistered", func() bool { return f.Len() == 2 })
}

func TestFanoutDropsSlowMember(t *testing.T) {
	f, url, _ := startFanout(t, time.Minute, time.Minute)
	dialMember(t, url) // never reads: the socket buffers fill, then its send buffer
	await(t, "the member registered", func() bool { return f.Len() == 1 })
	big := []byte(strings.Repeat("x", 32<<10))
	for i := 0; i < 2000 && f.Len() == 1; i++ {
		f.Broadcast(big)
	}
	if f.Len() != 0 || f.Dropped() != 1 {
		t.Fatalf("Len() = %d, Dropped() = %d after 2000 broadcasts to a member that never reads, want 0 and 1", f.Len(), f.Dropped())
	}
}

func TestFanoutRunEndClosesMembers(t *testing.T) {
	f, url, stop := startFanout(t, 10*time.Millisecond, time.Second)
	ws := dialMember(t, url)
	await(t, "the member registered", func() bool { return f.Len() == 1 })
	stop() // returns once the member's goroutines have ended
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("a member read a message after Run ended, want its connection closed")
	}
	f.Broadcast([]byte("after")) // does not block once Run has ended
	late := dialMember(t, url)
	if _, _, err := late.ReadMessage(); err == nil {
		t.Fatal("a connection made after Run ended read a message, want it closed")
	}
	if n := f.Len(); n != 0 {
		t.Fatalf("Len() = %d after Run ended, want 0", n)
	}
}

func TestPercentilesNearestRank(t *testing.T) {
	for _, tc := range []struct {
		in            []int64
		p50, p99, top int64
	}{
		{nil, 0, 0, 0},
		{[]int64{7}, 7, 7, 7},
		{[]int64{4, 1, 3, 2}, 2, 4, 4},
		{[]int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5, 10, 10},
	} {
		p50, p99, top := percentiles(slices.Clone(tc.in))
		if p50 != tc.p50 || p99 != tc.p99 || top != tc.top {
			t.Errorf("percentiles(%v) = %d, %d, %d, want %d, %d, %d", tc.in, p50, p99, top, tc.p50, tc.p99, tc.top)
		}
	}
}

// TestFanoutFleetMeasures runs the fan-out fleet in process against a
// Fanout: two subscribers, one warm-up and three measured messages.
func TestFanoutFleetMeasures(t *testing.T) {
	f, url, _ := startFanout(t, time.Minute, time.Minute)
	// Its cleanup runs before the Fanout stops, even after a failure.
	subs := fleet.StartInProcess(t, FleetName, func(in io.Reader, out io.Writer) error {
		return RunFanoutFleet(FleetPlain, url, 2, in, out)
	})
	await(t, "2 members", func() bool { return f.Len() == 2 })
	message := func(seq int) []byte {
		return fmt.Appendf(nil, `{"type":"message","data":{"seq":%d,"t":%d}}`, seq, time.Now().UnixNano())
	}
	f.Broadcast(message(-1))
	if got := subs.Ask("warm 1 5000"); got != "2 0" {
		t.Fatalf("after the warm-up the fleet said %q", got)
	}
	for seq := 1; seq <= 3; seq++ {
		f.Broadcast(message(seq))
	}
	if got := subs.Ask("count 6 5000"); got != "6 0" {
		t.Fatalf("after 3 broadcasts to 2 members the fleet said %q", got)
	}
	var s FanoutSummary
	if err := json.Unmarshal([]byte(subs.Stop()), &s); err != nil {
		t.Fatal(err)
	}
	if s.Deliveries != 6 || s.Complete != 3 || s.Lost != 0 || s.P50 <= 0 || s.Max < s.P99 || s.LastMax != s.Max {
		t.Errorf("summary %+v, want 6 deliveries, 3 complete, none lost, ordered latencies", s)
	}
}
