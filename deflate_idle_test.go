package pulse

import (
	"bytes"
	"compress/flate"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A connection that has compressed and inflated messages holds no flate
// writer or reader once it is idle: nothing reachable from its Conn and
// its transport (gorilla's Conn included, on the std engine) is of
// compress/flate or one of pulse's pooled compressors. The walk is made
// once the reader, idle between messages, has seen the client leave.
func TestIdleDeflateHoldsNoCompressor(t *testing.T) { onEngines(t, testIdleDeflateHoldsNoCompressor) }

func testIdleDeflateHoldsNoCompressor(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{Interval: time.Hour, Compression: &CompressionOptions{}})
	d := websocket.Dialer{EnableCompression: true}
	ws, resp, err := d.Dial(l.url("/echo", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if resp.Header.Get("Sec-WebSocket-Extensions") != deflateResponse {
		t.Fatalf("compression not negotiated: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	c := l.nextOpen(t)
	msg := []byte(strings.Repeat("compress me, ", 1000))
	for range 3 {
		ws.WriteMessage(websocket.TextMessage, msg)
		if _, got, err := ws.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %v, %d bytes", err, len(got))
		}
	}
	// The client leaves while the server waits for its next frame; once
	// the server's reader has stopped, the walk below races nothing.
	ws.Close()
	l.nextClose(t)
	if path := findFlate(reflect.ValueOf(c), "Conn", map[uintptr]bool{}); path != "" {
		t.Fatalf("an idle connection holds a compressor at %s", path)
	}
}

// The search finds a flate reader where one is held.
func TestFindFlate(t *testing.T) {
	held := &struct{ r io.Reader }{flate.NewReader(nil)}
	if findFlate(reflect.ValueOf(held), "x", map[uintptr]bool{}) == "" {
		t.Fatal("a held flate reader was not found")
	}
	if path := findFlate(reflect.ValueOf(&struct{ r io.Reader }{bytes.NewReader(nil)}), "x", map[uintptr]bool{}); path != "" {
		t.Fatalf("found a compressor at %s where there is none", path)
	}
}

// skipFields lead away from the connection: to the server and every
// other connection, or the session.
var skipFields = map[string]bool{"srv": true, "session": true, "node": true, "p": true, "c": true}

// findFlate returns the path to a compressor reachable from v, or "".
func findFlate(v reflect.Value, path string, seen map[uintptr]bool) string {
	if !v.IsValid() {
		return ""
	}
	t := v.Type()
	if t.PkgPath() == "compress/flate" || t == reflect.TypeFor[deflater]() || t == reflect.TypeFor[inflater]() {
		return path + " (" + t.String() + ")"
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return ""
		}
		seen[v.Pointer()] = true
		return findFlate(v.Elem(), path, seen)
	case reflect.Interface:
		return findFlate(v.Elem(), path, seen)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := t.Field(i); !skipFields[f.Name] {
				if p := findFlate(v.Field(i), path+"."+f.Name, seen); p != "" {
					return p
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := findFlate(v.Index(i), path+"[]", seen); p != "" {
				return p
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if p := findFlate(it.Value(), path+"{}", seen); p != "" {
				return p
			}
		}
	}
	return ""
}
