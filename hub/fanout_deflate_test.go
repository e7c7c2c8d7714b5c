package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/internal/stats"
	"github.com/pulse-go/pulse/wire"
)

// A publication to many subscribers that compress is compressed once, not
// once per subscriber, and each of them reads it whole.
func TestCompressedFanoutCompressesOnce(t *testing.T) {
	const subscribers, publications = 20, 5
	env := startHub(t, &pulse.Options{Interval: time.Hour, Compression: &pulse.CompressionOptions{}}, nil, nil)
	var subs []*testClient
	for range subscribers {
		c := dialCompressed(t, env.addr())
		c.subscribe(t, "room", nil, false)
		subs = append(subs, c)
	}
	body := strings.Repeat("a compressible line of chat. ", 100) // 2.9 KB, over the threshold
	before := stats.Deflates.Load()
	for i := range publications {
		data := fmt.Sprintf(`{"n":%d,"text":%q}`, i, body)
		if _, err := env.hub.Publish(context.Background(), "room", []byte(data), PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range subs {
			if m := expect[wire.Message](t, c); string(m.Publication.Data) != data {
				t.Fatalf("publication %d arrived as %.80q", i, m.Publication.Data)
			}
		}
	}
	if got := stats.Deflates.Load() - before; got != publications {
		t.Fatalf("%d publications to %d subscribers compressed %d times, want %d", publications, subscribers, got, publications)
	}
}

// dialCompressed is dial with permessage-deflate offered, and checks that
// the server accepted it.
func dialCompressed(t *testing.T, host string) *testClient {
	t.Helper()
	c, resp := dialWith(t, host, true)
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("compression not negotiated: %q", ext)
	}
	return c
}
