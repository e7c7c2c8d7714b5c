package hubtest

import (
	"time"

	"github.com/pulse-go/pulse/hub"
)

// testHistoryEmptyChannel: a channel that has no publication yet has a top
// at offset zero of an epoch that its first publication keeps, so a client
// holding that top misses nothing.
func testHistoryEmptyChannel(e *env) {
	e.subscribe("e") // keeps the stream alive, as the hub does
	pubs, top, err := e.history("e", hub.Position{})
	if err != nil || len(pubs) != 0 || top.Offset != 0 || top.Epoch == "" {
		e.t.Fatalf("History of an empty channel = %d publications, top %v, %v; want none, offset 0 of an epoch, no error", len(pubs), top, err)
	}
	if pubs, got, err := e.history("e", top); err != nil || len(pubs) != 0 || got != top {
		e.t.Errorf("History from the empty top = %d publications, top %v, %v; want none, %v, no error", len(pubs), got, err, top)
	}
	want := e.publishN("e", 1)
	if want[0].Pos != (hub.Position{Epoch: top.Epoch, Offset: 1}) {
		e.t.Errorf("first publication at %v, want offset 1 of epoch %q", want[0].Pos, top.Epoch)
	}
	pubs, _, err = e.history("e", top)
	if err != nil {
		e.t.Fatalf("History from the empty top: %v", err)
	}
	e.checkPubs("History from the empty top", pubs, want)
}

// testHistoryFromZero: a zero since returns no publications, and the top.
func testHistoryFromZero(e *env) {
	want := e.publishN("h", 5)
	pubs, top, err := e.history("h", hub.Position{})
	if err != nil || len(pubs) != 0 || top != want[4].Pos {
		e.t.Errorf("History from zero = %d publications, top %v, %v; want none, top %v, no error", len(pubs), top, err, want[4].Pos)
	}
}

// testHistoryFromMiddle: History returns exactly the publications after
// since, oldest first, as they were published.
func testHistoryFromMiddle(e *env) {
	var want []hub.Publication
	for range 6 {
		want = append(want, e.publishN("h", 1)...)
		e.clock.Advance(time.Second)
	}
	pubs, top, err := e.history("h", want[2].Pos)
	if err != nil || top != want[5].Pos {
		e.t.Fatalf("History: top %v, %v; want top %v, no error", top, err, want[5].Pos)
	}
	e.checkPubs("History from the middle", pubs, want[3:])
}

// testHistoryFromTop: History from the top returns no publications.
func testHistoryFromTop(e *env) {
	want := e.publishN("h", 3)
	pubs, top, err := e.history("h", want[2].Pos)
	if err != nil || len(pubs) != 0 || top != want[2].Pos {
		e.t.Errorf("History from the top = %d publications, top %v, %v; want none, top %v, no error", len(pubs), top, err, want[2].Pos)
	}
}

// testHistoryWrongEpoch: a position of another epoch is unrecoverable.
func testHistoryWrongEpoch(e *env) {
	want := e.publishN("h", 3)
	pubs, top, err := e.history("h", hub.Position{Epoch: want[0].Pos.Epoch + "-other", Offset: 1})
	e.checkUnrecoverable(pubs, top, want[2].Pos, err)
}

// testHistoryBeyondTop: a position beyond the top is unrecoverable: it was
// given by a stream that has since lost its history.
func testHistoryBeyondTop(e *env) {
	want := e.publishN("h", 3)
	beyond := want[2].Pos
	beyond.Offset++
	pubs, top, err := e.history("h", beyond)
	e.checkUnrecoverable(pubs, top, want[2].Pos, err)
}

// testHistoryLimitByCount: history keeps the last HistorySize
// publications; a position before them is unrecoverable.
func testHistoryLimitByCount(e *env) {
	size := e.cfg.HistorySize
	want := e.publishN("h", size)
	epochStart := hub.Position{Epoch: want[0].Pos.Epoch}
	pubs, _, err := e.history("h", epochStart)
	if err != nil {
		e.t.Fatalf("History from offset 0 with %d publications kept: %v", size, err)
	}
	e.checkPubs("History of a full history", pubs, want)

	want = append(want, e.publishN("h", 3)...)
	top := want[len(want)-1].Pos
	pubs, got, err := e.history("h", epochStart)
	e.checkUnrecoverable(pubs, got, top, err)
	pubs, got, err = e.history("h", want[1].Pos)
	e.checkUnrecoverable(pubs, got, top, err)
	pubs, _, err = e.history("h", want[2].Pos)
	if err != nil {
		e.t.Fatalf("History from just before the oldest kept: %v", err)
	}
	e.checkPubs("History from just before the oldest kept", pubs, want[3:])
}

// testHistoryLimitByAge: a publication leaves history HistoryTTL after it
// was published; a stream whose history aged out still recovers its top.
func testHistoryLimitByAge(e *env) {
	e.subscribe("h") // keeps the stream alive, as the hub does
	ttl := e.cfg.HistoryTTL
	old := e.publishN("h", 3)
	e.clock.Advance(ttl / 2)
	young := e.publishN("h", 2)
	e.clock.Advance(ttl/2 + time.Second) // old are ttl+1s old, young ttl/2+1s
	top := young[1].Pos

	pubs, got, err := e.history("h", hub.Position{Epoch: top.Epoch})
	e.checkUnrecoverable(pubs, got, top, err)
	pubs, got, err = e.history("h", old[1].Pos)
	e.checkUnrecoverable(pubs, got, top, err)
	pubs, _, err = e.history("h", old[2].Pos)
	if err != nil {
		e.t.Fatalf("History after the expired ones: %v", err)
	}
	e.checkPubs("History after the expired ones", pubs, young)

	e.clock.Advance(ttl) // all expired
	pubs, got, err = e.history("h", young[0].Pos)
	e.checkUnrecoverable(pubs, got, top, err)
	if pubs, got, err := e.history("h", top); err != nil || len(pubs) != 0 || got != top {
		e.t.Fatalf("History from the top of an expired history = %d publications, top %v, %v; want none, top %v, no error", len(pubs), got, err, top)
	}
	next := e.publishN("h", 1)
	if next[0].Pos != (hub.Position{Epoch: top.Epoch, Offset: top.Offset + 1}) {
		e.t.Errorf("publication after an expired history at %v, want right after %v", next[0].Pos, top)
	}
}
