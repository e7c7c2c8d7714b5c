package pulse

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The decoders of this package, each with a table whose rows also seed its
// fuzz test. Committed corpus files live in testdata/fuzz.

var appHeartbeatCases = []struct {
	in   string
	want string
}{
	{`{"type":"ping"}`, "ping"},
	{`{"type":"pong"}`, "pong"},
	{` { "type" : "pong", "t": 12 } `, "pong"},
	{`{"type":"publish","channel":"a"}`, ""},
	{`{"type":"PING"}`, ""},
	{`{"type":1}`, ""},
	{`{"type":"pong"`, ""},
	{`"pong"`, ""},
	{`pong`, ""},
	{``, ""},
	{`{"type":"pong","pad":"` + strings.Repeat("x", maxControlMessage) + `"}`, ""},
}

func TestAppHeartbeat(t *testing.T) {
	for _, tc := range appHeartbeatCases {
		if got := appHeartbeat([]byte(tc.in)); got != tc.want {
			t.Errorf("appHeartbeat(%.40q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzAppHeartbeat: never panics, and agrees with a full JSON decode.
func FuzzAppHeartbeat(f *testing.F) {
	for _, tc := range appHeartbeatCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := appHeartbeat(data)
		var env struct{ Type any }
		want := ""
		if len(data) <= maxControlMessage && json.Unmarshal(data, &env) == nil {
			if s, ok := env.Type.(string); ok && (s == "ping" || s == "pong") {
				want = s
			}
		}
		if got != want {
			t.Fatalf("appHeartbeat(%q) = %q, full decode says %q", data, got, want)
		}
	})
}

var parseRetryCases = []struct {
	in   string
	want time.Duration
}{
	{"server restart retry=5000", 5 * time.Second},
	{"retry=0", 0},
	{"retry=250 draining", 250 * time.Millisecond},
	{"server restart", 0},
	{"retry=", 0},
	{"retry=-5", 0},
	{"retry=12x", 0},
	{"retry=99999999999999", 0},
	{"noretry=5", 0},
}

func TestParseRetry(t *testing.T) {
	for _, tc := range parseRetryCases {
		if got := ParseRetry(tc.in); got != tc.want {
			t.Errorf("ParseRetry(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := ParseRetry(withRetry("server restart", 1500*time.Millisecond)); got != 1500*time.Millisecond {
		t.Errorf("withRetry does not round-trip: %v", got)
	}
}

// FuzzParseRetry: never panics, never negative, never over 2^32 ms, and
// round-trips through withRetry.
func FuzzParseRetry(f *testing.F) {
	for _, tc := range parseRetryCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		d := ParseRetry(reason)
		if d < 0 || d > (1<<32)*time.Millisecond {
			t.Fatalf("ParseRetry(%q) = %v", reason, d)
		}
		if strings.Contains(reason, "retry=") {
			return
		}
		if got := ParseRetry(withRetry(reason, d)); got != d {
			t.Fatalf("round trip of %v through %q gave %v", d, reason, got)
		}
	})
}

// FuzzClosePayload: the encoded close frame body always fits a control
// frame, carries the code, and its reason is a valid UTF-8 prefix.
func FuzzClosePayload(f *testing.F) {
	f.Add(uint16(4000), "heartbeat timeout")
	f.Add(uint16(1005), "")
	f.Add(uint16(1012), strings.Repeat("é", 100))
	f.Add(uint16(999), "bad code")
	f.Fuzz(func(t *testing.T, code uint16, reason string) {
		if !utf8.ValidString(reason) {
			return // reasons come from this package or a validated frame
		}
		b := closePayload(&CloseError{Code: CloseCode(code), Reason: reason})
		if !sendable(CloseCode(code)) {
			if b != nil {
				t.Fatalf("code %d is not sendable but encoded %q", code, b)
			}
			return
		}
		if len(b) > 125 || len(b) < 2 || binary.BigEndian.Uint16(b) != code {
			t.Fatalf("payload %q for code %d", b, code)
		}
		if got := string(b[2:]); !utf8.ValidString(got) || !strings.HasPrefix(reason, got) {
			t.Fatalf("reason %q is not a valid prefix of %q", got, reason)
		}
	})
}

// The app heartbeat examples in PROTOCOL.md are what this package reads
// as heartbeats.
func TestProtocolHeartbeatExamples(t *testing.T) {
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, block := range regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllSubmatch(doc, -1) {
		if kind := appHeartbeat(block[1]); kind != "" {
			found[kind] = true
		}
	}
	if !found["ping"] || !found["pong"] || !strings.Contains(string(doc), string(appPing)) || !strings.Contains(string(doc), string(appPong)) {
		t.Fatalf("PROTOCOL.md lacks the app heartbeat examples %s and %s", appPing, appPong)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Interval: -time.Second},
		{Timeout: time.Microsecond},
		{QueueSize: -1},
		{WriteTimeout: -1},
		{Heartbeat: HeartbeatText + 1},
	} {
		if _, err := NewServer(&o); err == nil {
			t.Errorf("NewServer(%+v) accepted", o)
		}
	}
	if s, err := NewServer(nil); err != nil || s.Tick() != time.Second {
		t.Fatalf("defaults: %v, tick %v; want a 1s tick", err, s.Tick())
	}
	s, _ := NewServer(&Options{Interval: time.Second, Timeout: 300 * time.Millisecond})
	if tick := s.Tick(); tick > 30*time.Millisecond || time.Second%tick >= time.Microsecond {
		t.Fatalf("tick %v: want at most Timeout/10, dividing Interval", tick)
	}
}
