package browser

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// TestChatFailover runs the chat on two `pulse serve` nodes sharing one
// redis-server: ann's page reaches node A through a balancer, bob's page
// is on node B. Node A is killed (SIGKILL) and, while the balancer has not
// yet noticed, bob says more. Once the balancer sends connections to the
// surviving node, ann's pulse.js reconnects there and resumes: her page
// shows every message, once each, in order, as bob's does, with the
// "back" note of a resume, and what she says then reaches bob.
func TestChatFailover(t *testing.T) {
	bin := buildPulse(t)
	redis := redistest.Start(t)
	a := startNode(t, bin, "--broker", redis.URL())
	b := startNode(t, bin, "--broker", redis.URL())
	lb := startBalancer(t, a, b)
	br := startBrowser(t)
	ann := br.open(t, "ann", lb.url("/chat/#lobby"))
	bob := br.open(t, "bob", b.url("/chat/#lobby"))
	ann.waitFor("bob in the members", membersShown(2), loadTimeout)
	bob.waitFor("ann in the members", membersShown(2), loadTimeout)
	ann.say("hello from node A")
	bob.waitFor("ann's message", messagesShown(1), loadTimeout)
	bob.say("hi ann, from node B")
	ann.waitFor("bob's message", messagesShown(2), loadTimeout)
	ann.noConsoleErrors()
	bob.noConsoleErrors()

	lb.setDown(true)
	a.kill()
	killed := time.Now()
	ann.waitFor("the reconnecting banner", `document.querySelector('#banner.show[data-state="reconnecting"]') !== null`, cutTimeout)
	const missed = 5
	for i := 1; i <= missed; i++ {
		bob.say(fmt.Sprintf("while node A was dead %d", i))
		bob.waitFor("the ack of bob's message", messagesShown(2+i), loadTimeout)
	}
	lb.setDown(false)
	ann.waitFor("every message sent after the kill", messagesShown(2+missed), cutTimeout+5*time.Second)
	t.Logf("ann's page caught up on node B %v after node A was killed", time.Since(killed).Round(time.Millisecond))
	ann.waitFor("the catch-up note", `document.getElementById('history-note').textContent.startsWith('back')`, loadTimeout)
	ann.waitFor("the banner to go", `!document.querySelector('#banner.show')`, loadTimeout)

	ann.say("back, on node B")
	bob.waitFor("ann's message through node B", messagesShown(3+missed), loadTimeout)
	ann.waitFor("her own message acknowledged", messagesShown(3+missed), loadTimeout)
	annLog, bobLog := chatLog(ann), chatLog(bob)
	if !slices.Equal(annLog, bobLog) {
		t.Fatalf("ann's messages differ from bob's:\nann: %q\nbob: %q", annLog, bobLog)
	}
	if len(slices.Compact(slices.Clone(annLog))) != len(annLog) {
		t.Fatalf("ann shows a message twice: %q", annLog)
	}
	for i := 1; i <= missed; i++ {
		if want := fmt.Sprintf("while node A was dead %d", i); !hasSuffix(annLog[1+i], want) {
			t.Errorf("message %d is %q, want %q", 2+i, annLog[1+i], want)
		}
	}
	ann.screenshots("chat-failover", "")
}
