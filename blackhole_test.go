package pulse

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

// Over real sockets, through the fault proxy: peers cut off by a silent
// partition (no FIN, no RST, nothing) are detected within the bound, and the
// peers beside them are untouched. Run with -v to see the detection times.
func TestBlackholedPeersDetected(t *testing.T) {
	onEngines(t, func(t *testing.T, engine Engine) {
		for _, kind := range allKinds {
			t.Run(kind.String(), func(t *testing.T) { testBlackhole(t, engine, kind) })
		}
	})
}

func testBlackhole(t *testing.T, engine Engine, kind HeartbeatKind) {
	const victims, bystanders = 20, 5
	l := startLive(t, engine, &Options{Interval: testInterval, Timeout: testTimeout, DrainWindow: 10 * time.Millisecond})
	cutProxy := startProxy(t, l)
	okProxy := startProxy(t, l)
	subprotocols := []string(nil)
	if kind == HeartbeatApp {
		subprotocols = []string{Subprotocol}
	}
	query := "/echo?heartbeat=" + kind.String()
	if kind == HeartbeatApp {
		query = "/echo"
	}
	victimConns := map[*Conn]bool{}
	var peers, others []*testPeer
	for range victims {
		peers = append(peers, dialPeer(t, l.url(query, cutProxy.Addr()), kind, subprotocols...))
		victimConns[l.nextOpen(t)] = true
	}
	for range bystanders {
		others = append(others, dialPeer(t, l.url(query, okProxy.Addr()), kind, subprotocols...))
		l.nextOpen(t)
	}
	for _, p := range append(peers, others...) {
		p.awaitBeats(t, 2) // running steadily, each at its own phase
	}

	cut := time.Now()
	cutProxy.Blackhole(chaos.DirectionBoth)
	var sinceCut, sinceLast []time.Duration
	for range victims {
		e := l.nextClose(t)
		if !victimConns[e.conn] || e.err.Code != CloseHeartbeatTimeout {
			t.Fatalf("closed %v with %v; want a victim with %v", e.conn.ID(), e.err, CloseHeartbeatTimeout)
		}
		last := l.srv.wheel.start.Add(time.Duration(e.conn.lastRecv.Load()))
		sinceCut = append(sinceCut, e.at.Sub(cut))
		sinceLast = append(sinceLast, e.at.Sub(last))
	}
	bound := testInterval + testTimeout + l.srv.Tick()
	const slack = 300 * time.Millisecond // scheduling under -race on a busy machine
	if lo, hi := spread(sinceLast); lo < testInterval+testTimeout || hi > bound+slack {
		t.Fatalf("closed %v to %v after the last inbound frame, want within [%v, %v]", lo, hi, testInterval+testTimeout, bound)
	}
	if lo, hi := spread(sinceCut); lo < testTimeout-slack || hi > bound+slack {
		t.Fatalf("closed %v to %v after the cut, want within [%v, %v]", lo, hi, testTimeout, bound)
	}
	t.Logf("%s: %d blackholed at %v/%v, tick %v; detected after the cut: %s; after the last frame: %s (bound %v)",
		kind, victims, testInterval, testTimeout, l.srv.Tick(), summary(sinceCut), summary(sinceLast), bound)

	for _, p := range others {
		assertEchoes(t, p)
	}
	select {
	case e := <-l.closes:
		t.Fatalf("a bystander was closed: %v", e.err)
	default:
	}
}

// spread returns the least and greatest of ds, sorting ds.
func spread(ds []time.Duration) (lo, hi time.Duration) {
	slices.Sort(ds)
	return ds[0], ds[len(ds)-1]
}

func summary(ds []time.Duration) string {
	slices.Sort(ds)
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v median %v max %v", ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]))
}

func startProxy(t *testing.T, l *liveServer) *chaos.Proxy {
	t.Helper()
	p, err := chaos.Listen("127.0.0.1:0", l.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
