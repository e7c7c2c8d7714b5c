package hub

import (
	"bytes"
	"slices"
	"sync"
	"time"
)

// memStream is one channel of a Memory: its stream, subscriptions and
// members.
type memStream struct {
	mu sync.Mutex // guards every field below

	dead       bool   // swept out of Memory.channels: the channel must be looked up again
	epoch      string // set at creation
	top        uint64 // offset of the last publication; 0 before the first
	hist       memHistory
	subs       map[uint64]func(Event) // nil when empty
	nextSub    uint64                 // id of the last subscription
	members    map[string]*memMember  // by ID; nil when empty
	lastActive time.Time              // of the last publish, unsubscribe or leave
}

// run calls f with s locked, unless s was swept. ok is false when s was
// swept and f was not called.
func (s *memStream) run(f func(s *memStream, now time.Time) error, now func() time.Time) (ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return false, nil
	}
	return true, f(s, now())
}

// deliver calls every subscription with e. s.mu is held.
func (s *memStream) deliver(e Event) {
	for _, deliver := range s.subs {
		deliver(e)
	}
}

// sweepIfIdle marks s dead and reports true if nobody is subscribed or
// present and nothing happened for idleAfter: its history and keys have
// all expired.
func (s *memStream) sweepIfIdle(now time.Time, idleAfter time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) > 0 || len(s.members) > 0 || now.Sub(s.lastActive) < idleAfter {
		return false
	}
	s.dead = true
	return true
}

// memMember is a member present in a channel, and the connections that
// hold it: it stays until the last of them leaves.
type memMember struct {
	Member          // as it last joined
	owners []string // the Owner of each join not yet left; never empty
}

// join adds m.Owner to the owners of member m.ID, which m now describes,
// and reports whether that is news to the channel: a member that was not
// there, or one whose User, Client or Info changed. s.mu is held.
func (s *memStream) join(m Member) bool {
	old := s.members[m.ID]
	if old == nil {
		if s.members == nil {
			s.members = make(map[string]*memMember)
		}
		s.members[m.ID] = &memMember{Member: m, owners: []string{m.Owner}}
		return true
	}
	if !slices.Contains(old.owners, m.Owner) {
		old.owners = append(old.owners, m.Owner)
	}
	changed := old.User != m.User || old.Client != m.Client || !bytes.Equal(old.Info, m.Info)
	old.Member = m
	return changed
}

// leave removes owner from the owners of member id, or all of them if
// owner is "", and returns the member if it has none left and is gone.
// s.mu is held.
func (s *memStream) leave(id, owner string) (Member, bool) {
	old := s.members[id]
	if old == nil {
		return Member{}, false
	}
	if owner != "" {
		i := slices.Index(old.owners, owner)
		if i < 0 {
			return Member{}, false // a connection that holds nothing here
		}
		old.owners = slices.Delete(old.owners, i, i+1)
		if len(old.owners) > 0 {
			return Member{}, false
		}
	}
	delete(s.members, id)
	if len(s.members) == 0 {
		s.members = nil
	}
	return old.Member, true
}

// memHistory holds a channel's retained publications, oldest first: a ring
// over buf that grows up to the history size.
type memHistory struct {
	buf  []Publication
	head int // index in buf of the oldest
	n    int // how many are retained
}

// push appends p, dropping the oldest if size are retained already.
func (h *memHistory) push(p Publication, size int) {
	if h.n == len(h.buf) && h.n < size {
		h.grow(min(size, max(4, 2*h.n)))
	}
	if h.n == len(h.buf) {
		h.pop()
	}
	h.buf[(h.head+h.n)%len(h.buf)] = p
	h.n++
}

func (h *memHistory) grow(size int) {
	buf := make([]Publication, size)
	for i := range h.n {
		buf[i] = *h.at(i)
	}
	h.buf, h.head = buf, 0
}

// at returns the i-th oldest retained publication.
func (h *memHistory) at(i int) *Publication {
	return &h.buf[(h.head+i)%len(h.buf)]
}

// pop drops the oldest publication.
func (h *memHistory) pop() {
	h.buf[h.head] = Publication{}
	h.head = (h.head + 1) % len(h.buf)
	h.n--
}

// from returns a copy of the publications from the i-th oldest on, or nil.
func (h *memHistory) from(i int) []Publication {
	if i >= h.n {
		return nil
	}
	pubs := make([]Publication, 0, h.n-i)
	for ; i < h.n; i++ {
		pubs = append(pubs, *h.at(i))
	}
	return pubs
}
