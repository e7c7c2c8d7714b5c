package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// benchJSON runs "pulse bench ARGS --json" and returns its result.
func benchJSON(t *testing.T, args ...string) *benchResult {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"bench"}, args...)
	args = append(args[:len(args)-1:len(args)-1], "--json", args[len(args)-1])
	if err := run(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("pulse %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	var res benchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not a result: %v\n%s", err, out.String())
	}
	return &res
}

// fig returns a figure of res, failing the test if it is missing.
func fig(t *testing.T, res *benchResult, name string) float64 {
	t.Helper()
	v, ok := res.figure(name)
	if !ok {
		t.Fatalf("no figure %q in %+v", name, res.Figures)
	}
	return v
}

// serverMetrics scrapes the test server's /metrics.
func serverMetrics(t *testing.T, s *served) map[string]float64 {
	t.Helper()
	m, err := scrapeMetrics(t.Context(), s.url("http", "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// settled waits until the server holds no connection and returns its
// metrics then: every connection the tool opened has been counted closed.
func settled(t *testing.T, s *served) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		m := serverMetrics(t, s)
		if m["pulse_connections"] == 0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %v connections", m["pulse_connections"])
		}
		time.Sleep(20 * time.Millisecond) // polling the server's own count
	}
}

// benchLimits lift the server's limits (connections per source address,
// upgrades per second, publishes per connection), which a load test from
// one address meets first.
var benchLimits = []string{"--max-conns-per-addr", "1000000", "--upgrade-rate", "1000000", "--publish-rate", "1000000"}

// startBenchServe starts a server for the bench: limits lifted, then flags.
func startBenchServe(t *testing.T, flags ...string) *served {
	t.Helper()
	return startServe(t, append(slices.Clone(benchLimits), flags...)...)
}

// endedAtServer waits until the server has counted at least want connections
// ended since before, and returns its count: the observer lowers
// pulse_connections a moment before it counts the disconnect, so a
// settled server may still be counting. A tool that reports more than
// happened fails here after the wait.
func endedAtServer(t *testing.T, s *served, before map[string]float64, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n := serverMetrics(t, s)["pulse_disconnects_total"] - before["pulse_disconnects_total"]
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond) // polling the server's own count
	}
}

// TestBenchRefusals checks the errors a user meets before any load.
func TestBenchRefusals(t *testing.T) {
	s := startBenchServe(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "ws://" + ln.Addr().String() + "/ws"
	ln.Close()
	_, hard, _ := fileLimit()
	// A process with a low limit on files stands for a server started
	// from a shell with the usual 1024.
	low := exec.Command("sh", "-c", "ulimit -n 1024 && exec sleep 60")
	if err := low.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { low.Process.Kill(); low.Wait() })
	lowPID := strconv.Itoa(low.Process.Pid)
	for deadline := time.Now().Add(wait); ; {
		if limit, _ := pidFileLimit(low.Process.Pid); limit == 1024 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell did not lower its limit on files")
		}
		time.Sleep(time.Millisecond) // the shell runs ulimit
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"bench"}, []string{"missing scenario", "idle, upgrades"}},
		{[]string{"bench", "soak", "ws://127.0.0.1:1/ws"}, []string{`unknown scenario "soak"`}},
		{[]string{"bench", "idle"}, []string{"missing URL"}},
		{[]string{"bench", "ws://127.0.0.1:1/ws", "--n", "0", "idle"}, []string{"--n", "must be at least 1"}},
		{[]string{"bench", "idle", "ws://example.com/ws"}, []string{"example.com is not on this machine", "--allow-remote"}},
		{[]string{"bench", "storm", "--raw", s.url("ws", "/echo")}, []string{"storm has no raw mode"}},
		{[]string{"bench", "fanout", "--raw", s.url("ws", "/echo")}, []string{"has one room", "--room 100", "{room}"}},
		{[]string{"bench", "idle", "--duration", "2s", closed}, []string{"refused", "is the server running"}},
		{[]string{"bench", "idle", "--duration", "2s", s.url("ws", "/echo")}, []string{"does not speak pulse.v1", "--raw"}},
		{[]string{"bench", "storm", "--chaos", "--duration", "2s", closed}, []string{"refused", "is the server running"}},
		{[]string{"bench", "fanout", "--duration", "2s", s.url("ws", "/echo")}, []string{"does not speak pulse.v1"}},
		{[]string{"bench", "storm", "--duration", "2s", s.url("ws", "/ws")}, []string{"--restart-cmd", "--chaos"}},
		{[]string{"bench", "latency", "--n", "2", "--rate", "500", s.url("ws", "/ws")}, []string{"--max-ping-rate", "250 a second"}},
		{[]string{"bench", "idle", "--n", "30000", "--pid", strconv.Itoa(os.Getpid()), s.url("ws", "/ws")},
			[]string{"may open at most", "ulimit -n", "hard limit of " + strconv.FormatUint(hard, 10)}},
		{[]string{"bench", "idle", "--n", "5000", "--pid", lowPID, s.url("ws", "/ws")},
			[]string{"the server (pid " + lowPID + ") may open at most 1024 files", `raise the limit with "ulimit -n 5016"`}},
		{[]string{"bench", "latency", "--n", "30000", s.url("ws", "/ws")},
			[]string{"this process may open at most", "30257", "latency holds all its connections in this process"}},
	}
	for _, tt := range tests {
		err := run(t.Context(), tt.args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !containsAll(err.Error(), tt.want) {
			t.Errorf("pulse %s: %v, want an error with %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

// checkHeld checks an idle result against what the server saw.
func checkHeld(t *testing.T, s *served, res *benchResult, before map[string]float64, n int) {
	t.Helper()
	after := settled(t, s)
	held := fig(t, res, "connections held")
	if held != float64(n) {
		t.Errorf("connections held %v, want %d", held, n)
	}
	if closed := endedAtServer(t, s, before, held); held > closed {
		t.Errorf("the tool held %v connections; the server saw %v end", held, closed)
	}
	beats := fig(t, res, "heartbeats answered")
	pings := after["pulse_pings_sent_total"] - before["pulse_pings_sent_total"]
	if beats == 0 || beats > pings {
		t.Errorf("the tool answered %v heartbeats; the server sent %v", beats, pings)
	}
	if got := res.Server["pulse_connections"]; got < held {
		t.Errorf("the server reported %v connections at the end of the hold, the tool held %v", got, held)
	}
}

// TestBenchIdle holds connections in both modes and checks the figures
// against the server's metrics.
func TestBenchIdle(t *testing.T) {
	s := startBenchServe(t, "--ping-interval", "100ms")
	for _, mode := range []struct{ flag, path string }{{"--raw=false", "/ws"}, {"--raw", "/echo"}} {
		before := serverMetrics(t, s)
		res := benchJSON(t, "idle", mode.flag, "--n", "40", "--duration", "1500ms", "--pid", strconv.Itoa(os.Getpid()), s.url("ws", mode.path))
		checkHeld(t, s, res, before, 40)
		if v := fig(t, res, "server RSS per connection"); v == 0 {
			t.Errorf("%s: no RSS per connection with --pid", mode.flag)
		}
		if len(res.Timeline) < 5 {
			t.Errorf("%s: timeline of %d samples over 1.5s", mode.flag, len(res.Timeline))
		}
	}
}

// TestBenchWorkerChild is a child of "pulse bench" when benchWorkerVar is
// set, as useTestWorkers does.
func TestBenchWorkerChild(t *testing.T) {
	if os.Getenv(benchWorkerVar) == "" {
		return // run only as a child of bench (see useTestWorkers)
	}
	commandStdin = os.Stdin
	if err := run(context.Background(), []string{"bench"}, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// useTestWorkers makes the children of bench this test binary, running
// TestBenchWorkerChild, until the test ends.
func useTestWorkers(t *testing.T) {
	spawn := benchSpawn
	t.Cleanup(func() { benchSpawn = spawn })
	benchSpawn = func(ctx context.Context) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchWorkerChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), benchWorkerVar+"=1")
		return cmd, nil
	}
}

// TestBenchIdleChildren spreads the connections over child processes and
// source addresses.
func TestBenchIdleChildren(t *testing.T) {
	useTestWorkers(t)
	s := startBenchServe(t, "--ping-interval", "100ms")
	before := serverMetrics(t, s)
	res := benchJSON(t, "idle", "--n", "50", "--per-process", "20", "--duration", "2s", s.url("ws", "/ws"))
	checkHeld(t, s, res, before, 50)
}

// TestBenchUpgrades checks that the tool counts no more upgrades than the
// server saw. Its clients close at once, on pulse serve's default engine
// (epoll on Linux).
func TestBenchUpgrades(t *testing.T) {
	s := startBenchServe(t)
	for _, mode := range []struct{ flag, path string }{{"--raw=false", "/ws"}, {"--raw", "/echo"}} {
		before := serverMetrics(t, s)
		res := benchJSON(t, "upgrades", mode.flag, "--concurrency", "4", "--duration", "500ms", s.url("ws", mode.path))
		settled(t, s)
		n := fig(t, res, "upgrades")
		if closed := endedAtServer(t, s, before, n); n == 0 || n > closed {
			t.Errorf("%s: the tool counted %v upgrades, the server %v connections", mode.flag, n, closed)
		}
		if l := res.Latency["handshake"]; l == nil || l.Count != int64(n) || l.P50 > l.Max {
			t.Errorf("%s: handshake latency %+v for %v upgrades", mode.flag, l, n)
		}
	}
}

// TestBenchLatency measures round trips under background load.
func TestBenchLatency(t *testing.T) {
	s := startBenchServe(t)
	for _, mode := range []struct{ flag, path string }{{"--raw=false", "/ws"}, {"--raw", "/echo"}} {
		before := serverMetrics(t, s)
		res := benchJSON(t, "latency", mode.flag, "--n", "10", "--rate", "200", "--duration", "700ms", s.url("ws", mode.path))
		settled(t, s)
		l := res.Latency["round trip"]
		if l == nil || l.Count == 0 || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("%s: round trip %+v", mode.flag, l)
		}
		conns := fig(t, res, "background connections") + fig(t, res, "probe connections")
		if closed := endedAtServer(t, s, before, conns); conns > closed {
			t.Errorf("%s: %v connections, the server saw %v end", mode.flag, conns, closed)
		}
		if sent := fig(t, res, "background messages sent"); sent < 50 {
			t.Errorf("%s: %v background messages at 200/s over 0.7s", mode.flag, sent)
		}
	}
}

// TestBenchFanout checks deliveries against what the publishers were
// acknowledged and the server's count of connections.
func TestBenchFanout(t *testing.T) {
	s := startBenchServe(t)
	res := benchJSON(t, "fanout", "--subscribers", "60", "--room", "20", "--publishers", "2", "--rate", "200", "--duration", "1500ms", s.url("ws", "/ws"))
	acked, delivered := fig(t, res, "publications acknowledged"), fig(t, res, "deliveries")
	if acked < 100 || delivered != acked*20 {
		t.Errorf("%v deliveries of %v acknowledged publications in rooms of 20", delivered, acked)
	}
	for _, name := range []string{"lost", "duplicated", "undelivered at the end", "connections dropped"} {
		if v := fig(t, res, name); v != 0 {
			t.Errorf("%s: %v", name, v)
		}
	}
	if got := res.Server["pulse_connections"]; got < 62 {
		t.Errorf("the server reported %v connections; the tool had 62", got)
	}
	if l := res.Latency["delivery"]; l == nil || l.Count != int64(delivered) || l.P50 > l.P99 || l.P99 > l.Max {
		t.Errorf("delivery latency %+v for %v deliveries", l, delivered)
	}
	settled(t, s)
}

// TestQuickMessage checks the quick parse against the full decoder on
// the server's own encoding.
func TestQuickMessage(t *testing.T) {
	data := wire.MustEncode(wire.Message{Channel: "bench:x:1", Publication: wire.Publication{
		Pos: wire.Position{Epoch: "5b1e0c9a", Offset: 58}, Data: json.RawMessage(`{"t":1234567890123,"seq":7}`), From: "9f3c"}})
	pos, sent, ok := quickMessage(data)
	if !ok || pos != (wire.Position{Epoch: "5b1e0c9a", Offset: 58}) || sent != 1234567890123 {
		t.Errorf("quickMessage(%s) = %v, %d, %v", data, pos, sent, ok)
	}
	if _, _, ok := quickMessage([]byte(`{"type":"message","channel":"c","pos":{"epoch":"e","offset":1},"data":"text"}`)); ok {
		t.Error("quickMessage took data without a send time")
	}
}

// TestBenchStorm cuts 300 real clients, all in this process, through the
// chaos proxy, the server admitting 250 upgrades a second (see
// checkStorm).
func TestBenchStorm(t *testing.T) {
	const admitted = 250
	s := startBenchServe(t, "--upgrade-rate", strconv.Itoa(admitted))
	before := serverMetrics(t, s)
	const n = 300
	res := benchJSON(t, "storm", "--chaos", "--n", strconv.Itoa(n), "--room", "20", "--rate", "200", "--concurrency", "64", "--duration", "20s", s.url("ws", "/ws"))
	checkStorm(t, s, before, res, n, admitted)
}

// TestBenchStormChildren cuts 2,000 clients spread over four children,
// each with its own chaos proxy, the server admitting 1,000 upgrades a
// second: the same figures as in one process.
func TestBenchStormChildren(t *testing.T) {
	useTestWorkers(t)
	const admitted = 1000
	s := startBenchServe(t, "--upgrade-rate", strconv.Itoa(admitted))
	before := serverMetrics(t, s)
	const n = 2000
	res := benchJSON(t, "storm", "--chaos", "--n", strconv.Itoa(n), "--per-process", "1500", "--room", "20", "--rate", "200",
		"--concurrency", "64", "--duration", "60s", s.url("ws", "/ws"))
	checkStorm(t, s, before, res, n, admitted)
	// The children's proxies dial the server from their own addresses,
	// 127.0.0.2 and up, so no one address's ports bound the storm: every
	// client's two connections come from one of them.
	fromChildren := s.logs.count("pulse: open", "remote=127.0.0.") - s.logs.count("pulse: open", "remote=127.0.0.1:")
	if fromChildren < 2*n {
		t.Errorf("%d connections from the children's addresses, want the %d clients' two each", fromChildren, n)
	}
}

// checkStorm checks a storm of n clients cut by the chaos proxy, the
// server admitting admitted upgrades a second: every one comes back,
// nothing acknowledged is lost or delivered twice, neither the server's
// count nor the tool's shows more upgrades in a second than the server
// admits, and the server saw the connections end and come back.
func checkStorm(t *testing.T, s *served, before map[string]float64, res *benchResult, n int, admitted float64) {
	t.Helper()
	if back := fig(t, res, "clients back"); back != float64(n) {
		t.Errorf("%v of %d clients back", back, n)
	}
	if v := fig(t, res, "100 % back"); v <= 0 || v > 45 {
		t.Errorf("100 %% back after %vs", v)
	}
	rooms := float64(n / 20)
	// A publication applied before the cut may have lost its ack with it
	// (its retry is answered, late, as a duplicate): acknowledged is a
	// floor of what was published, sent a ceiling.
	sent, acked, delivered := fig(t, res, "publications sent"), fig(t, res, "publications acknowledged"), fig(t, res, "deliveries")
	if acked == 0 || delivered < acked*20 || delivered > sent*20 {
		t.Errorf("%v deliveries of %v acknowledged publications (%v sent) in %v rooms of 20", delivered, acked, sent, rooms)
	}
	for _, name := range []string{"lost", "duplicated", "undelivered to clients not back", "publishes refused"} {
		if v := fig(t, res, name); v != 0 {
			t.Errorf("%s: %v", name, v)
		}
	}
	after := settled(t, s)
	// Each client's first connection and its connection after the cut
	// ended at the server, and the publisher's; each was admitted.
	if ended := endedAtServer(t, s, before, float64(2*n+1)); ended < float64(2*n+1) {
		t.Errorf("the server saw %v connections end; the storm made at least %d", ended, 2*n+1)
	}
	if got := after["pulse_upgrades_admitted_total"] - before["pulse_upgrades_admitted_total"]; got < float64(2*n+1) {
		t.Errorf("the server admitted %v upgrades; the storm made at least %d", got, 2*n+1)
	}
	// The server admits the rate and a burst of a tenth of it: its own
	// count, read every second, shows no more. The tool sees each welcome
	// a handshake later than its admission, which may shift a few into the
	// same second of its own clock.
	limit := admitted + admitted/10
	if v := fig(t, res, "highest admitted in one second, server's count"); v <= 0 || v > limit {
		t.Errorf("the server admitted up to %v upgrades in a second; its rate is %v and burst %v", v, admitted, admitted/10)
	}
	if welcomes := fig(t, res, "highest welcomes in one second"); welcomes <= 0 || welcomes > 1.2*limit {
		t.Errorf("highest welcomes in one second: %v, with %v upgrades admitted a second", welcomes, admitted)
	}
}

// TestBenchBaseline runs idle against pulse and the baseline in one run.
func TestBenchBaseline(t *testing.T) {
	useTestWorkers(t)
	s := startBenchServe(t, "--ping-interval", "100ms")
	res := benchJSON(t, "idle", "--n", "30", "--duration", "1s", "--baseline", s.url("ws", "/ws"))
	base := res.Baseline
	if base == nil {
		t.Fatal("no baseline in the result")
	}
	if held := fig(t, base, "connections held"); held != 30 || base.Mode != "raw" {
		t.Errorf("baseline held %v connections in mode %s, want 30 in raw", held, base.Mode)
	}
	// The baseline pings every 100ms too (read from Pulse-Heartbeat): about
	// 30 connections * 10/s over the hold.
	if beats := fig(t, base, "heartbeats answered"); beats < 30 {
		t.Errorf("baseline: %v heartbeats answered in 1s at 100ms", beats)
	}
	if rss := fig(t, base, "server RSS per connection"); rss <= 0 {
		t.Errorf("baseline RSS per connection %v KiB, want its child's growth", rss)
	}
	var table bytes.Buffer
	printTable(&table, res)
	if !strings.Contains(table.String(), "baseline") || !strings.Contains(table.String(), "1.00x") {
		t.Errorf("the table shows no baseline column with ratios:\n%s", table.String())
	}
}

// TestBenchAdmission runs idle against a server with its default limit of
// 100 connections per source address: the rest are dial failures, each a
// refusal the server counted, and the tool says which flag lifts it. The
// upgrade rate is lifted, so that its burst of 100 cannot refuse first.
func TestBenchAdmission(t *testing.T) {
	s := startServe(t, "--upgrade-rate", "1000000")
	before := serverMetrics(t, s)
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"bench", "idle", "--n", "150", "--duration", "1s", "--json", s.url("ws", "/ws")}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var res benchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	after := settled(t, s)
	failures := fig(t, &res, "dial failures")
	if held := fig(t, &res, "connections held"); held != 100 || failures != 50 {
		t.Errorf("held %v, %v dial failures; want 100 and 50", held, failures)
	}
	if refused := after["pulse_refusals_total"] - before["pulse_refusals_total"]; failures > refused {
		t.Errorf("the tool counted %v failures, the server %v refusals", failures, refused)
	}
	if !containsAll(errOut.String(), []string{"too many connections from your address", "--max-conns-per-addr"}) {
		t.Errorf("stderr does not explain the refusals:\n%s", errOut.String())
	}
}

// TestBenchStormRampRefused runs a storm against a server with its default
// limit of 100 connections per source address: the ramp cannot end, and
// the error says why the dials failed and which flag lifts the limit.
func TestBenchStormRampRefused(t *testing.T) {
	s := startServe(t, "--upgrade-rate", "1000000")
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"bench", "storm", "--chaos", "--n", "120", "--room", "60", "--rate", "10", "--duration", "3s", s.url("ws", "/ws")}, &out, &errOut)
	if err == nil {
		t.Fatalf("a storm of 120 against a limit of 100 per address succeeded:\n%s", out.String())
	}
	if !containsAll(err.Error(), []string{"only 100 of 120 clients were open", "503", "--max-conns-per-addr"}) {
		t.Errorf("the error does not explain the refusals: %v", err)
	}
}

// TestBenchFanoutBaseline runs fanout against pulse and the baseline's
// rooms in one run: the baseline's deliveries are its publications to
// each room times the room's subscribers, no more.
func TestBenchFanoutBaseline(t *testing.T) {
	useTestWorkers(t)
	s := startBenchServe(t)
	res := benchJSON(t, "fanout", "--subscribers", "40", "--room", "20", "--publishers", "2", "--rate", "100",
		"--duration", "1500ms", "--baseline", s.url("ws", "/ws"))
	base := res.Baseline
	if base == nil || base.Mode != "raw" {
		t.Fatalf("baseline %+v, want a raw run", base)
	}
	sent, delivered := fig(t, base, "publications sent"), fig(t, base, "deliveries")
	if fig(t, base, "rooms") != 2 || fig(t, base, "subscribers") != 40 {
		t.Errorf("baseline: %v rooms, %v subscribers; want 2 and 40", fig(t, base, "rooms"), fig(t, base, "subscribers"))
	}
	if sent < 50 || delivered > sent*20 || delivered < sent*20*9/10 {
		t.Errorf("baseline: %v deliveries of %v publications in rooms of 20", delivered, sent)
	}
	for _, name := range []string{"lost", "duplicated", "connections dropped"} {
		if v := fig(t, base, name); v != 0 {
			t.Errorf("baseline %s: %v", name, v)
		}
	}
	if l := base.Latency["delivery"]; l == nil || l.Count != int64(delivered) || l.P50 > l.P99 || l.P99 > l.Max {
		t.Errorf("baseline delivery latency %+v for %v deliveries", l, delivered)
	}
	var table bytes.Buffer
	printTable(&table, res)
	if !containsAll(table.String(), []string{"baseline", "deliveries/s", "ratio"}) {
		t.Errorf("the table shows no baseline column:\n%s", table.String())
	}
	settled(t, s)
}

// TestBenchFanoutRawBroadcast runs fanout --raw on a broadcast endpoint,
// the baseline's rooms (every member receives what each sends), with
// {room} in the URL and with one room: every publication reaches every
// subscriber of its room once, and the server saw each connection.
func TestBenchFanoutRawBroadcast(t *testing.T) {
	rooms := newFanoutRooms(2, time.Minute, time.Minute)
	var upgrades atomic.Int64
	h := rooms.handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrades.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(rooms.close)
	t.Cleanup(hs.Close)
	base := "ws" + strings.TrimPrefix(hs.URL, "http")
	for _, tt := range []struct {
		url                     string
		subscribers, room, pubs int
	}{
		{base + "/room/{room}", 40, 20, 2},
		{base + "/room/1", 30, 30, 3},
	} {
		before := upgrades.Load()
		res := benchJSON(t, "fanout", "--raw", "--subscribers", strconv.Itoa(tt.subscribers), "--room", strconv.Itoa(tt.room),
			"--publishers", strconv.Itoa(tt.pubs), "--rate", "100", "--duration", "1500ms", tt.url)
		nrooms := tt.subscribers / tt.room
		if got, want := upgrades.Load()-before, int64(tt.subscribers+tt.pubs*nrooms); got != want {
			t.Errorf("%s: the server upgraded %d connections; %d subscribers and %d publishers in %d rooms make %d",
				tt.url, got, tt.subscribers, tt.pubs, nrooms, want)
		}
		sent, delivered := fig(t, res, "publications sent"), fig(t, res, "deliveries")
		if sent < 50 || delivered != sent*float64(tt.room) {
			t.Errorf("%s: %v deliveries of %v publications in rooms of %d", tt.url, delivered, sent, tt.room)
		}
		for _, name := range []string{"lost", "duplicated", "undelivered at the end", "connections dropped"} {
			if v := fig(t, res, name); v != 0 {
				t.Errorf("%s: %s: %v", tt.url, name, v)
			}
		}
		if l := res.Latency["delivery"]; l == nil || l.Count != int64(delivered) || l.P50 > l.P99 {
			t.Errorf("%s: delivery latency %+v for %v deliveries", tt.url, l, delivered)
		}
	}
}

// TestBenchFanoutChildren spreads the subscribers over three children:
// the same figures as in one process, checked against the server.
func TestBenchFanoutChildren(t *testing.T) {
	useTestWorkers(t)
	s := startBenchServe(t)
	before := serverMetrics(t, s)
	res := benchJSON(t, "fanout", "--subscribers", "60", "--room", "20", "--publishers", "2", "--rate", "200",
		"--per-process", "22", "--duration", "2s", s.url("ws", "/ws"))
	acked, delivered := fig(t, res, "publications acknowledged"), fig(t, res, "deliveries")
	if subs := fig(t, res, "subscribers"); subs != 60 {
		t.Errorf("%v subscribers, want 60", subs)
	}
	if acked < 100 || delivered != acked*20 {
		t.Errorf("%v deliveries of %v acknowledged publications in rooms of 20", delivered, acked)
	}
	for _, name := range []string{"lost", "duplicated", "undelivered at the end", "connections dropped"} {
		if v := fig(t, res, name); v != 0 {
			t.Errorf("%s: %v", name, v)
		}
	}
	if l := res.Latency["delivery"]; l == nil || l.Count != int64(delivered) || l.P50 > l.P99 || l.P99 > l.Max {
		t.Errorf("delivery latency %+v for %v deliveries", l, delivered)
	}
	if ended := endedAtServer(t, s, before, 62); ended < 62 {
		t.Errorf("the server saw %v connections end; the tool had 62", ended)
	}
	settled(t, s)
}

// TestBenchStormBaseline cuts pulse's clients and then as many plain
// ones of the baseline through the chaos proxy: both come back, and the
// table says what does not apply to the baseline.
func TestBenchStormBaseline(t *testing.T) {
	useTestWorkers(t)
	s := startBenchServe(t)
	const n = 100
	res := benchJSON(t, "storm", "--chaos", "--baseline", "--n", strconv.Itoa(n), "--room", "20", "--rate", "100", "--duration", "8s", s.url("ws", "/ws"))
	base := res.Baseline
	if base == nil || base.Mode != "raw" || base.Scenario != "storm" {
		t.Fatalf("baseline %+v, want a raw storm", base)
	}
	for _, r := range []*benchResult{res, base} {
		if back := fig(t, r, "clients back"); back != n {
			t.Errorf("%s: %v of %d clients back", r.Mode, back, n)
		}
		if v := fig(t, r, "100 % back"); v <= 0 {
			t.Errorf("%s: 100 %% back after %vs", r.Mode, v)
		}
		if v := fig(t, r, "highest welcomes in one second"); v <= 0 || v > n {
			t.Errorf("%s: %v welcomes in a second of %d clients", r.Mode, v, n)
		}
	}
	if _, ok := base.figure("lost"); ok {
		t.Error("the baseline counts lost publications; it has none")
	}
	var table bytes.Buffer
	printTable(&table, res)
	if !containsAll(table.String(), []string{"n/a", "lost and duplicated do not apply"}) {
		t.Errorf("the table does not say what the baseline lacks:\n%s", table.String())
	}
	settled(t, s)
}
