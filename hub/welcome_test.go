package hub

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/pulse-go/pulse/wire"
)

var welcomeCases = []wire.Welcome{
	{Session: "00112233445566778899aabbccddeeff", Member: "0011223344556677", IntervalMS: 25000, TimeoutMS: 10000},
	{Session: "s", Member: "m", User: "alice", IntervalMS: 1, TimeoutMS: -1},
	{User: "quote\" backslash\\ <tag> & \b\f\n\r\t\x00\x1f\x7f"},
	{User: "é ü 日本 \u2028 \u2029 🙂"},
	{User: "bad \xff utf-8 \xe6\x97 cut"},
	{},
}

// The hand-written welcome is byte for byte wire.Encode's.
func TestEncodeWelcome(t *testing.T) {
	for _, w := range welcomeCases {
		if got, want := encodeWelcome(w), wire.MustEncode(w); !bytes.Equal(got, want) {
			t.Errorf("encodeWelcome(%+v)\n got %s\nwant %s", w, got, want)
		}
	}
}

// A field added to wire.Welcome fails this test until encodeWelcome
// writes it too: every field is set, so none is left out as empty.
func TestEncodeWelcomeEveryField(t *testing.T) {
	var w wire.Welcome
	v := reflect.ValueOf(&w).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		default:
			t.Fatalf("wire.Welcome.%s is a %s, which encodeWelcome does not write", v.Type().Field(i).Name, f.Kind())
		}
	}
	if got, want := encodeWelcome(w), wire.MustEncode(w); !bytes.Equal(got, want) {
		t.Errorf("encodeWelcome(%+v)\n got %s\nwant %s", w, got, want)
	}
}

func FuzzEncodeWelcome(f *testing.F) {
	for _, w := range welcomeCases {
		f.Add(w.Session, w.Member, w.User, w.IntervalMS, w.TimeoutMS)
	}
	f.Fuzz(func(t *testing.T, session, member, user string, interval, timeout int64) {
		w := wire.Welcome{Session: session, Member: member, User: user, IntervalMS: interval, TimeoutMS: timeout}
		if got, want := encodeWelcome(w), wire.MustEncode(w); !bytes.Equal(got, want) {
			t.Fatalf("encodeWelcome(%+v)\n got %s\nwant %s", w, got, want)
		}
	})
}
