// Package browser holds the end-to-end tests of pulse.js and the demo apps
// of package web, run in headless Chromium (Debian's chromium, driven by
// chromedp) against an in-process pulse server: the pulse.Server, the hub
// on a memory broker, web.Handler and web.Run, wired as `pulse serve` wires
// them. A chaos proxy sits between one browser tab and the server, so a
// test can cut that tab off silently and heal it.
//
// It is a module of its own (with a replace of the pulse module by ../..),
// so that chromedp is no dependency of the library: run it from this
// directory, as scripts/test.sh does (go vet ./... && go test ./...).
//
// The tests write screenshots of every demo, at desktop and phone widths,
// to screenshots/. Install Chromium with scripts/browser-deps.sh (the
// README's test command does); without /usr/bin/chromium the tests fail.
package browser
