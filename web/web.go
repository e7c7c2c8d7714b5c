package web

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"sync"

	"github.com/pulse-go/pulse/hub"
)

// static holds pulse.js and the demo pages.
//
//go:embed static
var static embed.FS

// Channels of the demos. Those starting with $ are published by the server
// only.
const (
	DashboardChannel = "$dashboard" // the simulated series, a sample every DashboardPeriod
	GameStateChannel = "$game"      // the arena, once per GameTick
	GameInputChannel = "game:input" // players' inputs; its presence lists the players
)

// Handler serves pulse.js at /pulse.js, the demo index at /, and the demos
// at /chat/, /dashboard/ and /game/, from the embedded files, to GET and
// HEAD; other methods get 405. Responses carry "Cache-Control: no-cache",
// so a new binary is picked up at once. Mount it at "/" (without a method,
// so that it does not conflict with method-less patterns of the same mux).
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// Run drives the demos' server side on h until ctx ends: the dashboard's
// series and the game's tick, which reads GameInputChannel through the
// hub. Run returns nil once ctx has ended and its goroutines have
// returned, or the error that stopped them.
func Run(ctx context.Context, h *hub.Hub) error {
	if h == nil {
		return errors.New("web: run: nil hub")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, run := range []func(context.Context) error{
		func(ctx context.Context) error { return runDashboard(ctx, h) },
		func(ctx context.Context) error { return runGame(ctx, h) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel() // one failing stops the other
			errs[i] = run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
