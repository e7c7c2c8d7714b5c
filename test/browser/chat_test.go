package browser

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/pulse-go/pulse/chaos"
)

// cutTimeout bounds how long a cut-off page may take to show it: the bound
// of the liveness rule, one check, and slack for a busy machine.
const cutTimeout = testBound + 3*time.Second

// noteTimeout bounds how long the chat's "back: missed messages filled
// in" may stay: its 4 s, and slack for a busy machine.
const noteTimeout = 4*time.Second + 2*time.Second

// say types text into the chat's message box and presses Enter.
func (tb *tab) say(text string) {
	tb.t.Helper()
	tb.do(chromedp.SendKeys(chromedp.CSS("#text"), text+kb.Enter))
}

// chatLog is what a chat page shows: "epoch:offset text" for every message
// that arrived from the server, in order.
func chatLog(tb *tab) []string {
	return eval[[]string](tb, `[...document.querySelectorAll('#messages li[data-pos]')]
		.map(li => li.dataset.pos + ' ' + li.querySelector('.text').textContent)`)
}

// messagesShown is the expression "the page shows n messages from the server".
func messagesShown(n int) string {
	return fmt.Sprintf(`document.querySelectorAll('#messages li[data-pos]').length === %d`, n)
}

func membersShown(n int) string {
	return fmt.Sprintf(`document.querySelectorAll('#members li').length === %d`, n)
}

// TestChatResumesAfterBlackhole chats between two pages, one of them
// behind a chaos proxy; the proxy then silently drops everything. That
// page's banner must say it is reconnecting, the other page must see it
// leave at the heartbeat bound, and after healing it must show every
// message sent meanwhile, once each, in order, with a note saying so that
// goes after a few seconds.
func TestChatResumesAfterBlackhole(t *testing.T) {
	s := startServer(t)
	proxy, viaProxy := startProxy(t, s)
	b := startBrowser(t)
	ann := b.open(t, "ann", s.url("/chat/#lobby"))
	bob := b.open(t, "bob", viaProxy.url("/chat/#lobby"))
	ann.waitFor("bob in the members", membersShown(2), loadTimeout)
	bob.waitFor("ann in the members", membersShown(2), loadTimeout)

	ann.say("hello bob")
	bob.waitFor("ann's message", messagesShown(1), loadTimeout)
	bob.say("hi ann, about to go through a tunnel")
	ann.waitFor("bob's message", messagesShown(2), loadTimeout)
	ann.noConsoleErrors()
	bob.noConsoleErrors()

	proxy.Blackhole(chaos.DirectionBoth)
	cut := time.Now()
	took := bob.waitFor("the reconnecting banner",
		`document.querySelector('#banner.show[data-state="reconnecting"]')?.textContent.includes('Reconnect')`, cutTimeout)
	t.Logf("bob's banner said reconnecting %v after the blackhole", took.Round(time.Millisecond))
	bob.screenshots("chat-reconnecting", "")
	ann.waitFor("bob to leave at the heartbeat bound", membersShown(1), cutTimeout)
	t.Logf("ann saw bob leave within %v of the blackhole", time.Since(cut).Round(time.Millisecond))

	const missed = 5
	for i := 1; i <= missed; i++ {
		ann.say(fmt.Sprintf("while you were away %d", i))
		ann.waitFor("the ack of ann's message", messagesShown(2+i), loadTimeout)
	}
	proxy.Heal()
	took = bob.waitFor("every missed message", messagesShown(2+missed), cutTimeout+5*time.Second)
	t.Logf("bob caught up %v after healing", took.Round(time.Millisecond))
	note := `document.getElementById('history-note').textContent`
	bob.waitFor("the catch-up note", note+`.startsWith('back')`, loadTimeout)
	took = bob.waitFor("the catch-up note to go", note+` === ''`, noteTimeout)
	t.Logf("the catch-up note went after %v", took.Round(time.Millisecond))
	bob.waitFor("the banner to go", `!document.querySelector('#banner.show')`, loadTimeout)
	ann.waitFor("bob back in the members", membersShown(2), loadTimeout)

	annLog, bobLog := chatLog(ann), chatLog(bob)
	if !slices.Equal(annLog, bobLog) {
		t.Fatalf("bob's messages differ from ann's:\nann: %q\nbob: %q", annLog, bobLog)
	}
	if len(slices.Compact(slices.Clone(bobLog))) != len(bobLog) {
		t.Fatalf("bob shows a message twice: %q", bobLog)
	}
	for i := 1; i <= missed; i++ {
		if want := fmt.Sprintf("while you were away %d", i); !hasSuffix(bobLog[1+i], want) {
			t.Errorf("message %d is %q, want %q", 2+i, bobLog[1+i], want)
		}
	}
	ann.screenshots("chat", "")
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// TestChatRoomsAndNicknames switches rooms by clicking, and renames a user:
// each room has its own members and history, and the new name reaches the
// other page's member list.
func TestChatRoomsAndNicknames(t *testing.T) {
	s := startServer(t)
	b := startBrowser(t)
	ann := b.open(t, "ann", s.url("/chat/#lobby"))
	bob := b.open(t, "bob", s.url("/chat/#lobby"))
	ann.waitFor("bob in the members", membersShown(2), loadTimeout)
	ann.say("lobby talk")
	bob.waitFor("ann's lobby message", messagesShown(1), loadTimeout)

	bob.do(chromedp.Click(chromedp.CSS(`#rooms a[href="#random"]`)))
	bob.waitFor("the random room", `document.getElementById('room-title').textContent === '# random' && `+membersShown(1)+` && `+messagesShown(0), loadTimeout)
	ann.waitFor("bob to leave the lobby", membersShown(1), loadTimeout)
	bob.say("anyone in random?")
	bob.waitFor("bob's own message", messagesShown(1), loadTimeout)
	bob.do(chromedp.Click(chromedp.CSS(`#rooms a[href="#lobby"]`)))
	bob.waitFor("the lobby's history", messagesShown(1)+` && document.querySelector('#messages .text').textContent === 'lobby talk'`, loadTimeout)

	bob.do(chromedp.SetValue(chromedp.CSS("#nick"), "robert"), chromedp.SendKeys(chromedp.CSS("#nick"), kb.Enter))
	ann.waitFor("the new name", `[...document.querySelectorAll('#members li')].some(li => li.textContent.includes('robert'))`, loadTimeout)
	ann.waitFor("one bob only", membersShown(2), loadTimeout)

	// A word longer than the room is wide wraps; it does not widen the page.
	ann.say(strings.Repeat("y", 600))
	bob.waitFor("the long word", messagesShown(2), loadTimeout)
	if wide := eval[bool](bob, `document.documentElement.scrollWidth > window.innerWidth`); wide {
		t.Errorf("a long word made the chat wider than the window (scrollWidth %d, innerWidth %d)",
			eval[int](bob, `document.documentElement.scrollWidth`), eval[int](bob, `window.innerWidth`))
	}
	ann.noConsoleErrors()
	bob.noConsoleErrors()
}
