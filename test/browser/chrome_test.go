package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	chromiumPath = "/usr/bin/chromium"
	stepTimeout  = 20 * time.Second // bound on every browser step
	phoneW       = 390
	phoneH       = 844
	desktopW     = 1280
	desktopH     = 800
)

// browser is one headless Chromium; each tab gets its own browser context,
// so tabs share no storage.
type browser struct {
	ctx context.Context // the chromedp context that owns the process
}

// startBrowser starts Chromium with a fresh profile; it ends with the test.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run scripts/browser-deps.sh (scripts/test.sh does)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(desktopW, desktopH),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// tab is one page in its own browser context, with its console errors.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu   sync.Mutex // guards errs
	errs []string
}

// open opens url in a new tab named name (for messages and screenshots).
func (b *browser) open(t *testing.T, name, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tb := &tab{t: t, name: name, ctx: ctx}
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				tb.mu.Lock()
				tb.errs = append(tb.errs, m.String())
				tb.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	tb.do(chromedp.EmulateViewport(desktopW, desktopH), chromedp.Navigate(url))
	return tb
}

// do runs actions, failing the test past stepTimeout.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

// waitFor polls the JavaScript expression until it is truthy, failing the
// test after timeout; it returns how long that took.
func (tb *tab) waitFor(what, expr string, timeout time.Duration) time.Duration {
	tb.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		tb.t.Fatalf("%s: waiting %v for %s (%s): %v", tb.name, timeout, what, expr, err)
	}
	return time.Since(start)
}

// eval evaluates expr in the page into a value of type T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

// noConsoleErrors fails the test if the page logged an error so far.
func (tb *tab) noConsoleErrors() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.errs) > 0 {
		tb.t.Errorf("%s: console errors:\n  %s", tb.name, strings.Join(tb.errs, "\n  "))
	}
}

// screenshot saves the viewport to screenshots/<name>.png.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	path := filepath.Join("screenshots", name+".png")
	if err := os.MkdirAll("screenshots", 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("wrote %s", path)
}

// screenshots saves the page at desktop and at phone width, as
// <name>-desktop.png and <name>-phone.png, and goes back to desktop.
func (tb *tab) screenshots(name string, settle string) {
	tb.t.Helper()
	tb.screenshot(name + "-desktop")
	tb.do(chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	if settle != "" {
		tb.waitFor("the phone layout", settle, 5*time.Second)
	}
	tb.screenshot(name + "-phone")
	tb.do(chromedp.EmulateViewport(desktopW, desktopH))
}

// js quotes s as a JavaScript string literal.
func js(s string) string { return fmt.Sprintf("%q", s) }

// dispatchKey dispatches a keyboard event of type typ ("keydown", "keyup")
// with the given code on the page's window, as a held key does.
func dispatchKey(typ, code string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`window.dispatchEvent(new KeyboardEvent(%s, {code: %s}))`, js(typ), js(code)))(ctx, t)
		return err
	})
}
