package main

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
)

// The --html report: one page, everything inline (SVG drawn here, a few
// lines of script, the result as JSON), nothing fetched, so that it opens
// from a file or an email attachment anywhere.

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 640, 180
	chartPad       = 40
	histBins       = 48
)

// series is one line of a timeline chart.
type series struct {
	Name   string
	Color  string
	Points [][2]float64 // (t, value)
}

// writeHTML writes the report of res.
func writeHTML(w io.Writer, res *benchResult) error {
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	page := htmlPage{Res: res, JSON: template.JS(strings.ReplaceAll(string(data), "</", `<\/`))}
	page.Rows = figureRows(res)
	for _, name := range slices.Sorted(mapKeys(res.Latency)) {
		var base *latencyStats
		if res.Baseline != nil {
			base = res.Baseline.Latency[name]
		}
		page.Histograms = append(page.Histograms, histogramSVG(name, res.Latency[name], base))
	}
	for _, tl := range []struct {
		title string
		value func(sample) float64
	}{
		{"connections open", func(s sample) float64 { return float64(s.Open) }},
		{"rate (per second: " + rateName(res.Scenario) + ")", func(s sample) float64 { return s.Rate }},
		{"p99 latency of each interval (ms)", func(s sample) float64 { return s.P99 }},
	} {
		lines := []series{{Name: "pulse", Color: "#1565c0", Points: points(res.Timeline, tl.value)}}
		if res.Baseline != nil {
			lines = append(lines, series{Name: "baseline", Color: "#e65100", Points: points(res.Baseline.Timeline, tl.value)})
		}
		page.Timelines = append(page.Timelines, lineSVG(tl.title, lines))
	}
	return htmlTemplate.Execute(w, page)
}

// rateName says what the timeline's rate counts in a scenario.
func rateName(scenario string) string {
	switch scenario {
	case "idle":
		return "heartbeats"
	case "upgrades":
		return "upgrades"
	case "latency":
		return "round trips"
	case "fanout":
		return "deliveries"
	case "storm":
		return "clients back"
	}
	return "events"
}

type htmlPage struct {
	Res        *benchResult
	Rows       [][]string
	Histograms []template.HTML
	Timelines  []template.HTML
	JSON       template.JS
}

// figureRows are the table's rows: name, value, and with a baseline its
// value and the ratio.
func figureRows(res *benchResult) [][]string {
	var rows [][]string
	for _, f := range res.Figures {
		row := []string{f.Name, num(f.Value) + " " + f.Unit}
		if res.Baseline != nil {
			if v, ok := res.Baseline.figure(f.Name); ok {
				row = append(row, num(v)+" "+f.Unit, ratio(f.Value, v))
			} else {
				row = append(row, "-", "-")
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func points(samples []sample, value func(sample) float64) [][2]float64 {
	p := make([][2]float64, len(samples))
	for i, s := range samples {
		p[i] = [2]float64{s.T, value(s)}
	}
	return p
}

// histogramSVG draws a latency histogram on a log scale of milliseconds,
// the baseline's (if any) as an outline over it.
func histogramSVG(name string, l, base *latencyStats) template.HTML {
	lo, hi := math.Inf(1), 0.0
	for _, s := range []*latencyStats{l, base} {
		if s == nil {
			continue
		}
		for _, b := range s.Buckets {
			lo, hi = math.Min(lo, math.Max(b[0], 0.001)), math.Max(hi, b[0])
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s latency histogram">`, chartW, chartH+30, template.HTMLEscapeString(name))
	if hi == 0 {
		sb.WriteString(`<text x="20" y="40">no samples</text></svg>`)
		return template.HTML(sb.String())
	}
	hi = math.Max(hi, lo*1.01)
	bins := func(s *latencyStats) []float64 {
		c := make([]float64, histBins)
		for _, b := range s.Buckets {
			c[binOf(b[0], lo, hi)] += b[1]
		}
		return c
	}
	main := bins(l)
	var other []float64
	if base != nil {
		other = bins(base)
	}
	top := math.Max(slices.Max(main), maxOr0(other))
	bw := float64(chartW-2*chartPad) / histBins
	for i, c := range main {
		h := c / top * chartH
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1565c0"><title>%s ms: %d</title></rect>`,
			chartPad+float64(i)*bw, chartH-h, bw-1, h, num(binEdge(i+1, lo, hi)), int64(c))
	}
	for i, c := range other {
		h := c / top * chartH
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#e65100"><title>baseline %s ms: %d</title></rect>`,
			chartPad+float64(i)*bw, chartH-h, bw-1, h, num(binEdge(i+1, lo, hi)), int64(c))
	}
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>`, chartPad, chartH, chartW-chartPad, chartH)
	for i := 0; i <= 4; i++ {
		x := chartPad + float64(i)*float64(chartW-2*chartPad)/4
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s ms</text>`, x, chartH+16, num(binEdge(i*histBins/4, lo, hi)))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func maxOr0(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// binOf is the display bin of v on a log scale from lo to hi.
func binOf(v, lo, hi float64) int {
	if v <= lo {
		return 0
	}
	i := int(math.Log(v/lo) / math.Log(hi/lo) * histBins)
	return min(max(i, 0), histBins-1)
}

// binEdge is the lower edge of display bin i.
func binEdge(i int, lo, hi float64) float64 {
	return lo * math.Pow(hi/lo, float64(i)/histBins)
}

// lineSVG draws a timeline chart of one or more series.
func lineSVG(title string, lines []series) template.HTML {
	maxT, maxV := 0.0, 0.0
	for _, s := range lines {
		for _, p := range s.Points {
			maxT, maxV = math.Max(maxT, p[0]), math.Max(maxV, p[1])
		}
	}
	maxT, maxV = math.Max(maxT, 1e-9), math.Max(maxV, 1e-9)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<figure><figcaption>%s</figcaption><svg viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		template.HTMLEscapeString(title), chartW, chartH+30, template.HTMLEscapeString(title))
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>`, chartPad, chartH, chartW-chartPad, chartH)
	fmt.Fprintf(&sb, `<text x="4" y="12" font-size="11">%s</text><text x="%d" y="%d" font-size="11" text-anchor="end">%s s</text>`,
		num(maxV), chartW-chartPad, chartH+16, num(maxT))
	for k, s := range lines {
		var pts []string
		for _, p := range s.Points {
			x := chartPad + p[0]/maxT*float64(chartW-2*chartPad)
			y := chartH - p[1]/maxV*(chartH-10)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.Join(pts, " "))
		fmt.Fprintf(&sb, `<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, chartW-chartPad-80, 14+14*k, s.Color, s.Name)
	}
	sb.WriteString(`</svg></figure>`)
	return template.HTML(sb.String())
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"num": num}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>pulse bench {{.Res.Scenario}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em auto;max-width:700px;color:#222}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right}td:first-child{text-align:left}
svg{width:100%;height:auto;background:#fafafa}figure{margin:1em 0}figcaption{font-weight:600}
#raw{display:none;white-space:pre-wrap;font-size:11px}
</style></head><body>
<h1>pulse bench {{.Res.Scenario}}</h1>
<p>{{.Res.URL}} ({{.Res.Mode}}), {{printf "%.1f" .Res.Seconds}} s, started {{.Res.Started.Format "2006-01-02 15:04:05 MST"}}</p>
<table><tr><th></th><th>pulse</th>{{if .Res.Baseline}}<th>baseline</th><th>ratio</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{if .Res.Server}}<h2>Server metrics</h2><table>{{range $k, $v := .Res.Server}}<tr><td>{{$k}}</td><td>{{num $v}}</td></tr>{{end}}</table>{{end}}
{{range $name, $l := .Res.Latency}}<h2>{{$name}} latency</h2>
<p>p50 {{num $l.P50}} ms, p90 {{num $l.P90}} ms, p99 {{num $l.P99}} ms, p99.9 {{num $l.P999}} ms, max {{num $l.Max}} ms, {{$l.Count}} samples</p>{{end}}
{{range .Histograms}}<figure>{{.}}</figure>{{end}}
<h2>Timeline</h2>
{{range .Timelines}}{{.}}{{end}}
<p><button id="show">show the raw result (JSON)</button></p><pre id="raw"></pre>
<script>
"use strict";
const result = {{.JSON}};
document.getElementById("show").addEventListener("click", () => {
  const raw = document.getElementById("raw");
  raw.textContent = JSON.stringify(result, null, 2);
  raw.style.display = "block";
});
document.title += " · " + result.figures.length + " figures";
</script>
</body></html>
`))
