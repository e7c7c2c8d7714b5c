package browser

import (
	"testing"
	"time"
)

// loadTimeout bounds how long a demo may take to connect and show data.
const loadTimeout = 10 * time.Second

// TestDemosLoad loads the index and every demo, waits until each is live,
// checks that none logged a console error, and saves screenshots of each
// at desktop and phone widths.
func TestDemosLoad(t *testing.T) {
	s := startServer(t)
	b := startBrowser(t)
	pages := []struct {
		name, path, ready string
	}{
		{"index", "/", `document.querySelectorAll('.demos a').length === 3`},
		{"chat", "/chat/#lobby", `document.querySelector('#status .dot').dataset.state === 'open' && document.querySelectorAll('#members li').length === 1`},
		{"dashboard", "/dashboard/", `Number(document.body.dataset.samples) >= 30`},
		{"game", "/game/", `document.querySelector('#scores li.me') !== null`},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			tb := b.open(t, p.name, s.url(p.path))
			tb.waitFor(p.name+" to be live", p.ready, loadTimeout)
			tb.noConsoleErrors()
			tb.screenshots(p.name, "")
		})
	}
}
