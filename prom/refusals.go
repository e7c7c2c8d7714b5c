package prom

import "github.com/prometheus/client_golang/prometheus"

// Refusals creates the counter pulse_refusals_total{reason}, registers it
// with reg, and returns the function that counts one refusal: give it to
// limit.Options.Refused and hub.Options.Refused. Each of reasons (such as
// limit.Reasons() and hub.Reasons()) has its series from the start; a
// reason not listed gets one when first counted.
func Refusals(reg prometheus.Registerer, reasons ...string) func(reason string) {
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pulse_refusals_total", Help: "Requests and connections refused by a limit or for lack of a valid token, by reason.",
	}, []string{"reason"})
	reg.MustRegister(refusals)
	for _, r := range reasons {
		refusals.WithLabelValues(r)
	}
	return func(reason string) { refusals.WithLabelValues(reason).Inc() }
}
