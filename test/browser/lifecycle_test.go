package browser

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pulse-go/pulse/client"
)

// The chat page in a browser that goes offline, freezes, and shares a
// room with clients that are not browsers.

// cdp runs one DevTools command on the tab, failing the test past
// stepTimeout.
func (tb *tab) cdp(what string, run func(ctx context.Context) error) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := run(ctx); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
}

// setOnline sets the tab's navigator.onLine, which fires the browser's
// online or offline event.
func (tb *tab) setOnline(online bool) {
	tb.t.Helper()
	tb.cdp("Network.overrideNetworkState", func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: !online, DownloadThroughput: -1, UploadThroughput: -1,
		})
		return err
	})
}

// setLifecycle freezes the tab's page, or makes it active again.
func (tb *tab) setLifecycle(state page.SetWebLifecycleStateState) {
	tb.t.Helper()
	tb.cdp("Page.setWebLifecycleState "+state.String(), func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: state})
		return err
	})
}

// recordStates makes the page keep every state the socket enters, with
// the banner's text at that moment, in window.seen.
func (tb *tab) recordStates() {
	tb.t.Helper()
	eval[bool](tb, `(window.seen = [], window.pulse.addEventListener('statechange', (e) =>
		queueMicrotask(() => window.seen.push(e.detail.state + ': ' + document.querySelector('#banner span').textContent))), true)`)
}

// TestChatOfflineBanner takes a chat page offline: the banner says
// "Offline" at once, with no countdown first and no button that cannot
// work, and online brings the page back.
func TestChatOfflineBanner(t *testing.T) {
	s := startServer(t)
	b := startBrowser(t)
	ann := b.open(t, "ann", s.url("/chat/#lobby"))
	ann.waitFor("the room", membersShown(1), loadTimeout)
	ann.recordStates()

	ann.setOnline(false)
	took := ann.waitFor("the offline banner", `document.querySelector('#banner.show[data-state="offline"]')?.textContent.startsWith('Offline')`, time.Second)
	t.Logf("the banner said offline %v after the offline event", took.Round(time.Millisecond))
	if visible := eval[bool](ann, `!document.querySelector('#banner button').hidden`); visible {
		t.Error(`"Reconnect now" shown while offline, where it can do nothing`)
	}
	ann.screenshots("chat-offline", "")
	ann.setOnline(true)
	ann.waitFor("the banner to go", `!document.querySelector('#banner.show') && window.pulse.state === 'open'`, loadTimeout)
	seen := eval[[]string](ann, `window.seen`)
	if len(seen) == 0 || !strings.HasPrefix(seen[0], "offline: Offline") {
		t.Fatalf("states after going offline: %q; want offline (and its banner) first", seen)
	}
	ann.noConsoleErrors()
}

// TestChatFreezeLeavesPresence freezes a chat page as the browser does to
// a background tab: it closes its connection, so the other page sees it
// leave at once rather than at the heartbeat bound; made active again, it
// comes back as the same member.
func TestChatFreezeLeavesPresence(t *testing.T) {
	s := startServer(t)
	b := startBrowser(t)
	ann := b.open(t, "ann", s.url("/chat/#lobby"))
	bob := b.open(t, "bob", s.url("/chat/#lobby"))
	ann.waitFor("bob in the members", membersShown(2), loadTimeout)
	member := eval[string](bob, `window.pulse.member`)

	bob.setLifecycle(page.SetWebLifecycleStateStateFrozen)
	took := ann.waitFor("bob to leave at once", membersShown(1), testBound/2)
	t.Logf("ann saw frozen bob leave after %v (heartbeat bound %v)", took.Round(time.Millisecond), testBound)

	bob.setLifecycle(page.SetWebLifecycleStateStateActive)
	ann.waitFor("bob back", membersShown(2), loadTimeout)
	if back := eval[string](ann, `[...document.querySelectorAll('#members li')].map(li => li.dataset.id).join(' ')`); !strings.Contains(back, member) {
		t.Fatalf("members after the resume: %s; want bob's member id %s again", back, member)
	}
	ann.noConsoleErrors()
	bob.noConsoleErrors()
}

// TestChatShowsOtherClients publishes into a chat room from the Go client
// (as the CLI and scripts do): a plain string, and JSON without the
// chat's fields. The page shows both, named by the publisher's name in
// presence, not "?".
func TestChatShowsOtherClients(t *testing.T) {
	s := startServer(t)
	b := startBrowser(t)
	ann := b.open(t, "ann", s.url("/chat/#lobby"))
	ann.waitFor("the room", membersShown(1), loadTimeout)

	c := client.New("ws://"+s.addr+"/ws", &client.Options{Name: "script"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	step, cancelStep := context.WithTimeout(ctx, stepTimeout)
	defer cancelStep()
	if _, err := c.Subscribe(step, "room:lobby", &client.SubscribeOptions{Presence: true}); err != nil {
		t.Fatal(err)
	}
	ann.waitFor("the script in the members", membersShown(2), loadTimeout)
	for _, data := range []string{`"plain words from a script"`, `{"text":"text without a nick"}`, `{"temp":21}`} {
		if _, err := c.Publish(step, "room:lobby", json.RawMessage(data), nil); err != nil {
			t.Fatal(err)
		}
	}
	ann.waitFor("the script's messages", messagesShown(3), loadTimeout)
	got := eval[[]string](ann, `[...document.querySelectorAll('#messages li[data-pos]')]
		.map(li => li.querySelector('.nick').textContent + ': ' + li.querySelector('.text').textContent)`)
	want := []string{"script: plain words from a script", "script: text without a nick", `script: {"temp":21}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the page shows\n%q\nwant\n%q", got, want)
	}
	ann.noConsoleErrors()
}
