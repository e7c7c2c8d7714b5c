package browser

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

func playersShown(n int) string {
	return fmt.Sprintf(`document.querySelectorAll('#scores li').length === %d`, n)
}

// TestGameRemovesVanishedPlayer plays with two pages, one behind a chaos
// proxy: both see each other and each other's latency, input moves a player
// on the server's tick, and a player cut off silently is removed from the
// other page at the heartbeat bound, not before, and comes back after
// healing.
func TestGameRemovesVanishedPlayer(t *testing.T) {
	s := startServer(t)
	proxy, viaProxy := startProxy(t, s)
	b := startBrowser(t)
	ann := b.open(t, "ann", s.url("/game/"))
	bob := b.open(t, "bob", viaProxy.url("/game/"))
	ann.waitFor("two players", playersShown(2), loadTimeout)
	bob.waitFor("two players", playersShown(2), loadTimeout)
	ann.waitFor("both latencies", `[...document.querySelectorAll('#scores .lat')].every(e => / ms$/.test(e.textContent))`, loadTimeout)

	x0 := eval[float64](ann, `window.demo.state().players.find(p => p.id === window.pulse.member).x`)
	ann.do(dispatchKey("keydown", "ArrowLeft"))
	if x0 < 200 {
		ann.do(dispatchKey("keyup", "ArrowLeft"), dispatchKey("keydown", "ArrowRight"))
	}
	ann.waitFor("ann to move", fmt.Sprintf(`Math.abs(window.demo.state().players.find(p => p.id === window.pulse.member).x - %v) > 50`, x0), loadTimeout)
	ann.do(dispatchKey("keyup", "ArrowLeft"), dispatchKey("keyup", "ArrowRight"))
	ann.noConsoleErrors()
	bob.noConsoleErrors()
	ann.screenshots("game", "")

	proxy.Blackhole(chaos.DirectionBoth)
	cut := time.Now()
	ann.waitFor("bob to be removed", playersShown(1), cutTimeout)
	took := time.Since(cut)
	t.Logf("bob removed %v after the blackhole (bound %v from his last frame)", took.Round(time.Millisecond), testBound)
	if min := testBound - testInterval - 100*time.Millisecond; took < min {
		t.Errorf("bob removed %v after the cut, before the bound allows (>= %v)", took, min)
	}
	proxy.Heal()
	ann.waitFor("bob back", playersShown(2), cutTimeout+5*time.Second)
	bob.waitFor("bob's page live again", `document.querySelector('#scores li.me') !== null`, loadTimeout)
}
