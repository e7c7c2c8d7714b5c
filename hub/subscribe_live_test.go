package hub

import (
	"context"
	"testing"

	"github.com/pulse-go/pulse/wire"
)

// heldHistory is a memory broker whose History, having read the history,
// says so on read and waits for release: a subscribe held between reading
// its top and its answer.
type heldHistory struct {
	*Memory
	read, release chan struct{}
}

func (b *heldHistory) History(ctx context.Context, channel string, since Position) ([]Publication, Position, error) {
	pubs, top, err := b.Memory.History(ctx, channel, since)
	b.read <- struct{}{}
	<-b.release
	return pubs, top, err
}

// A subscribe with no history to replay turns live in the worker: a
// publication made while it was being answered follows its answer, once,
// and then live ones do.
func TestSubscribeWithoutHistoryGetsEventsOfItsMaking(t *testing.T) {
	broker := &heldHistory{Memory: NewMemory(nil), read: make(chan struct{}), release: make(chan struct{})}
	env := startHub(t, nil, nil, &Options{Broker: broker})
	c := dial(t, env.addr())
	c.send(t, wire.Subscribe{ID: 1, Channel: "room"})
	<-broker.read
	publish := func(data string) {
		if _, err := env.hub.Publish(context.Background(), "room", []byte(data), PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	publish(`"during"`) // past the top the subscribe read: buffered, then sent
	close(broker.release)
	if m := expect[wire.Subscribed](t, c); m.ID != 1 || m.Position.Offset != 0 {
		t.Fatalf("answer %+v, want the subscribe's at offset 0", m)
	}
	publish(`"after"`)
	for i, want := range []string{`"during"`, `"after"`} {
		m := expect[wire.Message](t, c)
		if string(m.Publication.Data) != want || m.Publication.Pos.Offset != uint64(i+1) {
			t.Fatalf("message %d: %+v, want %s at offset %d", i, m.Publication, want, i+1)
		}
	}
}
