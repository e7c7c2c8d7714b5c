package browser

import (
	"testing"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

// maxSampleGap is the largest step between two samples the dashboard may
// show: the server samples every 100 ms; a busy machine may skip one tick.
const maxSampleGap = 500 * time.Millisecond

// TestDashboardFillsGap cuts the dashboard off silently for longer than the
// heartbeat bound, heals, and checks that the gap was filled from history:
// the samples are continuous, none twice, and the page says so.
func TestDashboardFillsGap(t *testing.T) {
	s := startServer(t)
	proxy, viaProxy := startProxy(t, s)
	b := startBrowser(t)
	tb := b.open(t, "dashboard", viaProxy.url("/dashboard/"))
	tb.waitFor("a few seconds of samples", `window.demo.samples().length >= 30`, loadTimeout)
	tb.noConsoleErrors()
	tb.screenshots("dashboard", `Number(document.body.dataset.samples) > 0`)

	proxy.Blackhole(chaos.DirectionBoth)
	cut := time.Now()
	tb.waitFor("the reconnecting banner", `document.querySelector('#banner.show[data-state="reconnecting"]') !== null`, cutTimeout)
	t.Logf("reconnecting %v after the blackhole", time.Since(cut).Round(time.Millisecond))
	proxy.Heal()
	tb.waitFor("the gap-filled note", `document.querySelector('#dash-status.gap')?.textContent.includes('gap filled')`, cutTimeout+5*time.Second)
	t.Logf("note: %s", eval[string](tb, `document.getElementById('dash-status').textContent`))

	gaps := eval[[]float64](tb, `(() => { const s = window.demo.samples();
		return s.slice(1).map((x, i) => x.t - s[i].t); })()`)
	var largest float64
	for i, g := range gaps {
		if g <= 0 {
			t.Fatalf("sample %d is not after the one before it (step %v ms): a sample shown twice or out of order", i+1, g)
		}
		largest = max(largest, g)
	}
	if largest > float64(maxSampleGap.Milliseconds()) {
		t.Errorf("largest step between samples is %v ms, want <= %v: the gap was not filled", largest, maxSampleGap)
	}
	t.Logf("%d samples, largest step %v ms", len(gaps)+1, largest)
}
