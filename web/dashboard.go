package web

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// DashboardPeriod is the time between two samples of the dashboard's series.
const DashboardPeriod = 100 * time.Millisecond

// series describes one simulated metric of the dashboard: a sine of the
// given period around base, plus a random walk, clamped to [min, max].
type series struct {
	base, amplitude float64
	period          time.Duration
	step            float64 // largest change of the walk per sample
	min, max        float64
}

// dashboardSeries are the dashboard's metrics, in the order of a sample's
// values: requests/s, p99 latency (ms), CPU (%), connections.
var dashboardSeries = []series{
	{base: 1200, amplitude: 400, period: 20 * time.Second, step: 40, min: 0, max: 3000},
	{base: 45, amplitude: 15, period: 13 * time.Second, step: 4, min: 1, max: 250},
	{base: 55, amplitude: 20, period: 31 * time.Second, step: 3, min: 0, max: 100},
	{base: 800, amplitude: 120, period: 47 * time.Second, step: 10, min: 0, max: 2000},
}

// sample is one publication of DashboardChannel.
type sample struct {
	T int64     `json:"t"` // Unix milliseconds
	V []float64 `json:"v"` // one value per series
}

// walker holds the random part of every series.
type walker struct {
	rng  *rand.Rand
	walk []float64
}

func newWalker(seed uint64) *walker {
	return &walker{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), walk: make([]float64, len(dashboardSeries))}
}

// next returns the sample at time now.
func (w *walker) next(now time.Time) sample {
	s := sample{T: now.UnixMilli(), V: make([]float64, len(dashboardSeries))}
	for i, d := range dashboardSeries {
		w.walk[i] += (w.rng.Float64()*2 - 1) * d.step
		w.walk[i] = math.Max(-d.amplitude, math.Min(d.amplitude, w.walk[i]))
		phase := 2 * math.Pi * float64(now.UnixNano()%int64(d.period)) / float64(d.period)
		v := d.base + d.amplitude*math.Sin(phase) + w.walk[i]
		s.V[i] = math.Round(math.Max(d.min, math.Min(d.max, v))*10) / 10
	}
	return s
}

// runDashboard publishes a sample to DashboardChannel every DashboardPeriod
// until ctx ends. A failed publish skips that sample; a closed broker ends
// the run.
func runDashboard(ctx context.Context, h *hub.Hub) error {
	w := newWalker(uint64(time.Now().UnixNano()))
	t := time.NewTicker(DashboardPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			data, _ := json.Marshal(w.next(now))
			if _, err := h.Publish(ctx, DashboardChannel, data, hub.PublishOptions{}); errors.Is(err, hub.ErrClosed) {
				return err
			}
		}
	}
}
