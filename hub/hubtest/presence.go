package hubtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pulse-go/pulse/hub"
)

var (
	alice = hub.Member{ID: "s1", User: "u-alice", Client: "alice", Info: []byte(`{"name":"Alice"}`)}
	bob   = hub.Member{ID: "s2", Client: "bob"}
)

func (e *env) presence() hub.PresenceBroker { return e.b.(hub.PresenceBroker) }

func (e *env) join(channel string, m hub.Member) {
	e.t.Helper()
	if err := e.presence().Join(e.ctx, channel, m); err != nil {
		e.t.Fatalf("Join(%q, %s): %v", channel, m.ID, err)
	}
}

func (e *env) leave(channel string, m hub.Member) {
	e.t.Helper()
	if err := e.presence().Leave(e.ctx, channel, m); err != nil {
		e.t.Fatalf("Leave(%q, %s): %v", channel, m.ID, err)
	}
}

// checkMembers reports unless channel's members are want, in any order.
func (e *env) checkMembers(channel string, want ...hub.Member) {
	e.t.Helper()
	got, err := e.presence().Members(e.ctx, channel)
	if err != nil {
		e.t.Fatalf("Members(%q): %v", channel, err)
	}
	slices.SortFunc(got, func(a, b hub.Member) int { return strings.Compare(a.ID, b.ID) })
	if !slices.EqualFunc(got, want, sameMember) {
		e.t.Errorf("Members(%q) = %s, want %s", channel, describeMembers(got), describeMembers(want))
	}
}

// checkEvents reports unless got are the presence events want.
func (e *env) checkEvents(got []hub.Event, want ...hub.Event) {
	e.t.Helper()
	same := func(a, b hub.Event) bool {
		return a.Type == b.Type && (a.Type == hub.EventLeave && a.Member.ID == b.Member.ID || sameMember(a.Member, b.Member))
	}
	if !slices.EqualFunc(got, want, same) {
		e.t.Errorf("received %s, want %s", describeEvents(got), describeEvents(want))
	}
}

func sameMember(a, b hub.Member) bool {
	return a.ID == b.ID && a.User == b.User && a.Client == b.Client && bytes.Equal(a.Info, b.Info)
}

func describeMembers(members []hub.Member) string {
	s := make([]string, len(members))
	for i, m := range members {
		s[i] = fmt.Sprintf("{%s %s %s %s}", m.ID, m.User, m.Client, m.Info)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func joined(m hub.Member) hub.Event { return hub.Event{Type: hub.EventJoin, Member: m} }
func left(m hub.Member) hub.Event   { return hub.Event{Type: hub.EventLeave, Member: m} }

// testJoin: Join delivers an EventJoin and lists the member.
func testJoin(e *env) {
	r := e.subscribe("p")
	e.checkMembers("p")
	e.join("p", alice)
	e.join("p", bob)
	e.checkEvents(e.barrier("p", r)[0], joined(alice), joined(bob))
	e.checkMembers("p", alice, bob)
}

// testRejoin: joining again replaces the member, and is announced again.
func testRejoin(e *env) {
	r := e.subscribe("p")
	e.join("p", alice)
	moved := alice
	moved.Info = []byte(`{"name":"Alice","room":2}`)
	e.join("p", moved)
	e.checkEvents(e.barrier("p", r)[0], joined(alice), joined(moved))
	e.checkMembers("p", moved)
}

// testLeave: Leave, given just the ID, removes the member and delivers an
// EventLeave.
func testLeave(e *env) {
	r := e.subscribe("p")
	e.join("p", alice)
	e.join("p", bob)
	e.leave("p", hub.Member{ID: alice.ID})
	e.checkEvents(e.barrier("p", r)[0], joined(alice), joined(bob), left(alice))
	e.checkMembers("p", bob)
}

// testLeaveUnknown: Leave of a member that is not there delivers nothing.
func testLeaveUnknown(e *env) {
	r := e.subscribe("p")
	e.join("p", alice)
	e.leave("p", bob)
	e.leave("other", alice)
	e.checkEvents(e.barrier("p", r)[0], joined(alice))
	e.checkMembers("p", alice)
}

// testLastOwnerLeaves: a member held by two connections (a duplicated
// tab, or a session continued before its old connection is found dead)
// joins once, stays while either holds it, whichever leaves first, and
// leaves with the last.
func testLastOwnerLeaves(e *env) {
	for _, order := range [][2]string{{"conn-2", "conn-1"}, {"conn-1", "conn-2"}} {
		channel := "p-" + order[0]
		r := e.subscribe(channel)
		e.join(channel, owned(alice, "conn-1"))
		e.join(channel, owned(alice, "conn-2"))
		e.leave(channel, owned(alice, order[0]))
		e.leave(channel, owned(alice, "conn-3")) // holds nothing here
		e.checkMembers(channel, alice)
		e.leave(channel, owned(alice, order[1]))
		e.checkEvents(e.barrier(channel, r)[0], joined(alice), left(alice))
		e.checkMembers(channel)
	}
}

// testOwnerChangesMember: a further owner that describes the member
// differently is announced with an EventJoin, and the member shows the
// new description while either owner holds it.
func testOwnerChangesMember(e *env) {
	r := e.subscribe("p")
	renamed := alice
	renamed.Client, renamed.Info = "ann", []byte(`{"name":"Ann"}`)
	e.join("p", owned(alice, "conn-1"))
	e.join("p", owned(renamed, "conn-2"))
	e.leave("p", owned(alice, "conn-1"))
	e.checkMembers("p", renamed)
	e.checkEvents(e.barrier("p", r)[0], joined(alice), joined(renamed))
}

// testLeaveWithoutOwner: a Leave given just the ID removes the member,
// whatever connections hold it.
func testLeaveWithoutOwner(e *env) {
	r := e.subscribe("p")
	e.join("p", owned(alice, "conn-1"))
	e.join("p", owned(alice, "conn-2"))
	e.leave("p", hub.Member{ID: alice.ID})
	e.checkEvents(e.barrier("p", r)[0], joined(alice), left(alice))
	e.checkMembers("p")
}

func owned(m hub.Member, owner string) hub.Member {
	m.Owner = owner
	return m
}

// testPresencePerChannel: members and their events belong to one channel.
func testPresencePerChannel(e *env) {
	ra, rb := e.subscribe("a"), e.subscribe("b")
	e.join("a", alice)
	e.join("b", bob)
	e.checkEvents(e.barrier("a", ra)[0], joined(alice))
	e.checkEvents(e.barrier("b", rb)[0], joined(bob))
	e.checkMembers("a", alice)
	e.checkMembers("b", bob)
}

// testPresenceClose: after Close, Join, Leave and Members return
// hub.ErrClosed.
func testPresenceClose(e *env) {
	e.join("p", alice)
	if err := e.b.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	if err := e.presence().Join(e.ctx, "p", bob); !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("Join after Close: %v, want ErrClosed", err)
	}
	if err := e.presence().Leave(e.ctx, "p", alice); !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("Leave after Close: %v, want ErrClosed", err)
	}
	if _, err := e.presence().Members(e.ctx, "p"); !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("Members after Close: %v, want ErrClosed", err)
	}
}
