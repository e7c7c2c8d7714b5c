package pulse

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"
)

// recordSink writes down what a frameReader parsed; it inflates a
// compressed message as the epoll engine does, up to limit.
type recordSink struct {
	events []string
	limit  int64
}

func (s *recordSink) message(op opcode, data []byte, compressed bool) {
	if compressed {
		var fe *frameError
		if data, fe = inflateMessage(op, data, s.limit); fe != nil {
			s.events = append(s.events, fmt.Sprintf("inflate fails %d", fe.code))
			return
		}
	}
	s.events = append(s.events, fmt.Sprintf("msg %d %q", op, data))
}
func (s *recordSink) ping(p []byte) { s.events = append(s.events, fmt.Sprintf("ping %q", p)) }
func (s *recordSink) pong()         { s.events = append(s.events, "pong") }
func (s *recordSink) peerClose(code CloseCode, reason string) {
	s.events = append(s.events, fmt.Sprintf("close %d %q", code, reason))
}

// parse feeds data to a new frameReader in pieces of at most step bytes.
func parse(data []byte, step int, limit int64) ([]string, error) {
	return parseWith(data, step, limit, false)
}

// parseWith is parse on a connection where permessage-deflate was
// negotiated, if deflate is set.
func parseWith(data []byte, step int, limit int64, deflate bool) ([]string, error) {
	r := frameReader{limit: limit, deflate: deflate}
	s := &recordSink{limit: limit}
	data = bytes.Clone(data) // feed unmasks in place
	var err error
	for len(data) > 0 && err == nil {
		n := min(step, len(data))
		err = r.feed(data[:n], s)
		data = data[n:]
	}
	return s.events, err
}

func TestFrameReader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []byte
		events []string
		code   CloseCode // of the error; 0 for none
	}{
		{"text", text("hi"), []string{`msg 1 "hi"`}, 0},
		{"fragments and a ping between", cat(clientFrame(false, opText, []byte("a"), 0), ping("p"), clientFrame(true, opContinuation, []byte("b"), 0)),
			[]string{`ping "p"`, `msg 1 "ab"`}, 0},
		{"64-bit length", clientFrame(true, opBinary, make([]byte, 70000), 0), []string{fmt.Sprintf("msg 2 %q", make([]byte, 70000))}, 0},
		{"close", clientFrame(true, opClose, closeBody(CloseGoingAway, "bye"), 0), []string{`close 1001 "bye"`}, 0},
		{"nothing after close", cat(clientFrame(true, opClose, nil, 0), text("late")), []string{`close 1005 ""`}, 0},
		{"over the limit at the header", clientFrame(true, opBinary, make([]byte, 101), 0), nil, CloseMessageTooBig},
		{"fragments over the limit", cat(clientFrame(false, opBinary, make([]byte, 60), 0), clientFrame(true, opContinuation, make([]byte, 41), 0)), nil, CloseMessageTooBig},
		{"invalid UTF-8 at once", clientFrame(false, opText, []byte{'a', 0xff}, 0), nil, CloseInvalidPayload},
		{"surrogate", text("\xed\xa0\x80"), nil, CloseInvalidPayload},
		{"unmasked", []byte{0x81, 0x00}, nil, CloseProtocolError},
		{"length top bit", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, nil, CloseProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 3, 1 << 20} {
				events, err := parse(tc.in, step, 100000)
				if tc.code == CloseMessageTooBig {
					events, err = parse(tc.in, step, 100)
				}
				checkParsed(t, step, events, err, tc.events, tc.code)
			}
		})
	}
}

// checkParsed fails the test unless a parse fed in pieces of step gave
// the events wanted and ended with a frameError of code (0: none).
func checkParsed(t *testing.T, step int, events []string, err error, want []string, code CloseCode) {
	t.Helper()
	var fe *frameError
	got := CloseCode(0)
	if errors.As(err, &fe) {
		got = fe.code
	}
	if !slices.Equal(events, want) || got != code {
		t.Fatalf("in pieces of %d: %.100q, error %v; want %.100q, code %v", step, events, err, want, code)
	}
}

// Any input, fed whole or in pieces, gives the same messages and the same
// error, never panics, and never hands over invalid UTF-8 as text or a
// message over the limit.
func FuzzFrameReader(f *testing.F) {
	for _, tc := range rfcCases() {
		f.Add(tc.send, uint8(1), false)
		f.Add(tc.send, uint8(7), false)
	}
	for _, tc := range deflateReaderCases(f) {
		f.Add(tc.in, uint8(1), true)
		f.Add(tc.in, uint8(5), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8, deflate bool) {
		const limit = 1 << 12
		whole, werr := parseWith(in, len(in)+1, limit, deflate)
		pieces, perr := parseWith(in, int(step)+1, limit, deflate)
		if !slices.Equal(whole, pieces) || fmt.Sprint(werr) != fmt.Sprint(perr) {
			t.Fatalf("whole: %q, %v\npieces of %d: %q, %v", whole, werr, int(step)+1, pieces, perr)
		}
		r := frameReader{limit: limit, deflate: deflate}
		r.feed(bytes.Clone(in), checkSink{t})
	})
}

// checkSink fails on a text message that is not UTF-8 or one over the limit.
type checkSink struct{ t *testing.T }

func (s checkSink) message(op opcode, data []byte, compressed bool) {
	if compressed {
		var fe *frameError
		if data, fe = inflateMessage(op, data, 1<<12); fe != nil {
			return
		}
	}
	if op == opText && !utf8.Valid(data) || len(data) > 1<<12 {
		s.t.Fatalf("handed over %d bytes of op %d: %q", len(data), op, data)
	}
}
func (checkSink) ping([]byte)                 {}
func (checkSink) pong()                       {}
func (checkSink) peerClose(CloseCode, string) {}
