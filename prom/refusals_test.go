package prom

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRefusals(t *testing.T) {
	reg := prometheus.NewRegistry()
	refused := Refusals(reg, "upgrade_rate", "publish_rate")
	refused("publish_rate")
	refused("publish_rate")
	refused("other")
	want := `
# HELP pulse_refusals_total Requests and connections refused by a limit or for lack of a valid token, by reason.
# TYPE pulse_refusals_total counter
pulse_refusals_total{reason="other"} 1
pulse_refusals_total{reason="publish_rate"} 2
pulse_refusals_total{reason="upgrade_rate"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pulse_refusals_total"); err != nil {
		t.Error(err)
	}
}
