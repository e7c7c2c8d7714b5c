package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium is the browser the HTML report is checked in.
const chromium = "/usr/bin/chromium"

// openInChromium loads page in headless Chromium, takes a screenshot, and
// returns the console lines it logged and the screenshot.
func openInChromium(t *testing.T, page string) (console []string, png []byte) {
	t.Helper()
	dir := t.TempDir()
	shot := filepath.Join(dir, "screenshot.png")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
		"--window-size=900,1800", "--screenshot="+shot, "file://"+page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, line)
		}
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, stderr.String())
	}
	return console, png
}

// TestBenchHTML writes the report of a short run and opens it in headless
// Chromium: no console message (the page logs none unless it fails) and a
// screenshot. A page that throws shows that the check sees failures.
func TestBenchHTML(t *testing.T) {
	s := startBenchServe(t)
	page := filepath.Join(t.TempDir(), "report.html")
	res := benchJSON(t, "latency", "--n", "5", "--duration", "600ms", "--html", page, s.url("ws", "/ws"))
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "round trip latency", "connections open", `"scenario":"latency"`} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", "<link", "src="} {
		if bytes.Contains(html, []byte(banned)) {
			t.Errorf("the report refers to something outside itself: %q", banned)
		}
	}
	console, png := openInChromium(t, page)
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 10000 {
		t.Errorf("screenshot of %d bytes, not a rendered page", len(png))
	}
	if len(res.Timeline) == 0 {
		t.Error("no timeline to draw")
	}

	broken := filepath.Join(t.TempDir(), "broken.html")
	os.WriteFile(broken, []byte(`<!doctype html><script>undefinedFunction()</script>`), 0o644)
	if console, _ := openInChromium(t, broken); len(console) == 0 {
		t.Error("a page that throws logged nothing: the check cannot fail")
	}
}
