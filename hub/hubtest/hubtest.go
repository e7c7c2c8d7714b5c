// Package hubtest is the conformance suite of hub.Broker: every
// implementation (the in-memory one today) passes TestBroker.
//
// The suite never sleeps. It waits for deliveries by receiving on channels
// with a generous timeout, so an asynchronous broker passes as well as a
// synchronous one, and it moves time with a fake Clock that the broker must
// read for every age and window. To check that something did NOT arrive,
// it publishes a marker and waits for it: the suite therefore assumes that
// the events of one channel reach a subscription in the order the broker
// accepted them.
package hubtest

import (
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// Config is what the suite asks of a broker under test.
type Config struct {
	HistorySize int              // publications kept per channel
	HistoryTTL  time.Duration    // how long a publication stays in history
	DedupWindow time.Duration    // how long an idempotency key is remembered
	Now         func() time.Time // a fake clock the suite advances; the broker must use it for ages and windows
}

// TestBroker runs the suite against brokers made by newBroker, one fresh
// broker per subtest. newBroker must return a broker that has no channels
// yet and applies cfg; the suite closes it when the subtest ends. The
// presence subtests run when the broker is a hub.PresenceBroker.
func TestBroker(t *testing.T, newBroker func(t *testing.T, cfg Config) hub.Broker) {
	t.Helper()
	for _, test := range brokerTests {
		t.Run(test.name, func(t *testing.T) { test.run(newEnv(t, newBroker)) })
	}
	if !offersPresence(t, newBroker) {
		t.Log("the broker is not a hub.PresenceBroker: presence is not offered, its tests do not apply")
		return
	}
	t.Run("Presence", func(t *testing.T) {
		for _, test := range presenceTests {
			t.Run(test.name, func(t *testing.T) { test.run(newEnv(t, newBroker)) })
		}
	})
}

type brokerTest struct {
	name string
	run  func(e *env)
}

var brokerTests = []brokerTest{
	{"ConcurrentOffsets", testConcurrentOffsets},
	{"Ordering", testOrdering},
	{"SubscribeSeesOnlyLater", testSubscribeSeesOnlyLater},
	{"DataIsCopied", testDataIsCopied},
	{"PublisherKept", testPublisherKept},
	{"ChannelsIndependent", testChannelsIndependent},
	{"HistoryEmptyChannel", testHistoryEmptyChannel},
	{"HistoryFromZero", testHistoryFromZero},
	{"HistoryFromMiddle", testHistoryFromMiddle},
	{"HistoryFromTop", testHistoryFromTop},
	{"HistoryWrongEpoch", testHistoryWrongEpoch},
	{"HistoryBeyondTop", testHistoryBeyondTop},
	{"HistoryLimitByCount", testHistoryLimitByCount},
	{"HistoryLimitByAge", testHistoryLimitByAge},
	{"IdempotencyDuplicate", testIdempotencyDuplicate},
	{"IdempotencyWindow", testIdempotencyWindow},
	{"IdempotencyPerChannel", testIdempotencyPerChannel},
	{"IdempotencyNoKey", testIdempotencyNoKey},
	{"IdempotencyKeyTooLong", testIdempotencyKeyTooLong},
	{"Unsubscribe", testUnsubscribe},
	{"UnsubscribeUnderLoad", testUnsubscribeUnderLoad},
	{"EmptyChannelName", testEmptyChannelName},
	{"Close", testClose},
}

var presenceTests = []brokerTest{
	{"Join", testJoin},
	{"Rejoin", testRejoin},
	{"Leave", testLeave},
	{"LeaveUnknown", testLeaveUnknown},
	{"LastOwnerLeaves", testLastOwnerLeaves},
	{"OwnerChangesMember", testOwnerChangesMember},
	{"LeaveWithoutOwner", testLeaveWithoutOwner},
	{"PerChannel", testPresencePerChannel},
	{"Close", testPresenceClose},
}

// offersPresence reports whether the brokers of newBroker keep presence.
func offersPresence(t *testing.T, newBroker func(t *testing.T, cfg Config) hub.Broker) bool {
	b := newBroker(t, suiteConfig(NewClock(clockStart)))
	defer b.Close()
	_, ok := b.(hub.PresenceBroker)
	return ok
}

// Clock is a fake clock for Config.Now: it stands still until Advance moves
// it. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
