package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// benchResult is what a run measured: the table, --json and --html all
// show it.
type benchResult struct {
	Scenario string                   `json:"scenario"`
	Mode     string                   `json:"mode"` // pulse.v1 or raw
	URL      string                   `json:"url"`
	Started  time.Time                `json:"started"`
	Seconds  float64                  `json:"seconds"`
	Figures  []figure                 `json:"figures"`
	Latency  map[string]*latencyStats `json:"latency,omitempty"`
	Timeline []sample                 `json:"timeline"`
	// Server holds the target's own metrics at the end of the run (and the
	// peak of pulse_connections during it), when it exposes them.
	Server   map[string]float64 `json:"server,omitempty"`
	Baseline *benchResult       `json:"baseline,omitempty"`
}

// figure is one number of a result.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// sample is one point of the timeline.
type sample struct {
	T    float64 `json:"t"`      // seconds since the start
	Open int64   `json:"open"`   // connections open
	Rate float64 `json:"rate"`   // the scenario's events per second: heartbeats, upgrades, deliveries...
	P99  float64 `json:"p99_ms"` // p99 latency of the last interval, if the scenario measures one
	Errs int64   `json:"errors"` // failures so far
}

func (r *benchResult) add(name string, value float64, unit string) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		value = 0 // nothing to divide by: JSON has no NaN
	}
	r.Figures = append(r.Figures, figure{name, value, unit})
}

// figure returns the value of the figure named name, and whether it exists.
func (r *benchResult) figure(name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func (r *benchResult) fill(cfg *benchConfig, start time.Time) {
	r.Scenario, r.URL, r.Started = cfg.scenario, cfg.url, start
	r.Seconds = time.Since(start).Seconds()
	r.Mode = "pulse.v1"
	if cfg.raw {
		r.Mode = "raw"
	}
}

// report writes res as JSON or a table on stdout, and the HTML page.
func (b *bench) report(res *benchResult, stdout io.Writer) error {
	if b.cfg.htmlFile != "" {
		if err := writeHTMLFile(b.cfg.htmlFile, res); err != nil {
			return fmt.Errorf("bench: --html: %w", err)
		}
	}
	if b.cfg.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printTable(stdout, res)
	return nil
}

// printTable writes res as a table; with a baseline, side by side.
func printTable(w io.Writer, res *benchResult) {
	fmt.Fprintf(w, "pulse bench %s  %s  (%s, %.1f s)\n", res.Scenario, res.URL, res.Mode, res.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	base := res.Baseline
	if base != nil {
		fmt.Fprintf(tw, "\tpulse\tbaseline\tratio\t\n")
	}
	for _, f := range res.Figures {
		name := f.Name
		if f.Unit != "" {
			name += " (" + f.Unit + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t", name, num(f.Value))
		if base != nil {
			if v, ok := base.figure(f.Name); ok {
				fmt.Fprintf(tw, "%s\t%s\t", num(v), ratio(f.Value, v))
			} else {
				fmt.Fprintf(tw, "n/a\t\t")
			}
		}
		fmt.Fprintln(tw)
	}
	printLatency(tw, res)
	tw.Flush()
	if base != nil && base.Scenario == "storm" {
		fmt.Fprintln(w, "baseline: plain WebSocket clients, no publications and no resume: lost and duplicated do not apply")
	}
	printServer(w, res.Server)
}

func printLatency(tw io.Writer, res *benchResult) {
	for _, name := range slices.Sorted(mapKeys(res.Latency)) {
		l := res.Latency[name]
		fmt.Fprintf(tw, "%s latency (ms)\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\tn %d\t\n",
			name, num(l.P50), num(l.P90), num(l.P99), num(l.P999), num(l.Max), l.Count)
		if res.Baseline != nil && res.Baseline.Latency[name] != nil {
			b := res.Baseline.Latency[name]
			fmt.Fprintf(tw, "  baseline\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\tn %d\t\n",
				num(b.P50), num(b.P90), num(b.P99), num(b.P999), num(b.Max), b.Count)
		}
	}
}

func printServer(w io.Writer, server map[string]float64) {
	if len(server) == 0 {
		return
	}
	var parts []string
	for _, name := range slices.Sorted(mapKeys(server)) {
		parts = append(parts, fmt.Sprintf("%s %s", name, num(server[name])))
	}
	fmt.Fprintf(w, "server metrics: %s\n", strings.Join(parts, ", "))
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// num prints v with the precision its size needs.
func num(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1 || v <= -1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// progress is the live line on a terminal; elsewhere it says nothing.
// Its methods may be called from any goroutine.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	shown bool
}

func newProgress(w io.Writer, terminal bool) *progress { return &progress{w: w, on: terminal} }

func (p *progress) show(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		fmt.Fprintf(p.w, "\r\033[K"+format, args...)
		p.shown = true
	}
}

// end moves off the progress line.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

// writeHTMLFile writes the HTML report of res to name.
func writeHTMLFile(name string, res *benchResult) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	err = writeHTML(f, res)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
