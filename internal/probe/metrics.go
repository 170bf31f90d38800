package probe

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the prober's Prometheus collectors. They are shared by every
// Prober registered with the same Registerer (a node restarts its prober on
// each topology change and lease generation; the series carry on).
type metrics struct {
	checks      *prometheus.HistogramVec
	transitions *prometheus.CounterVec
}

// newMetrics registers the prober's collectors with reg, or reuses the ones
// an earlier Prober registered there. A nil reg gives nil (no metrics).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	checks := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "firebreak_probe_check_duration_seconds",
		Help:    "Health check latency by check type (tcp, http, https, dns, grpc, exec) and result (ok, fail).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}, []string{"check", "result"})
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firebreak_probe_transitions_total",
		Help: "Observed endpoint state changes after rise/fall hysteresis, by check type and new state (up, down)."},
		[]string{"check", "to"})
	var err error
	if checks, err = register(reg, checks); err != nil {
		return nil, err
	}
	if transitions, err = register(reg, transitions); err != nil {
		return nil, err
	}
	return &metrics{checks: checks, transitions: transitions}, nil
}

// register registers c, or returns the collector of the same description
// already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old, nil
			}
		}
		return c, err
	}
	return c, nil
}

// check records one completed check of type kind.
func (m *metrics) check(kind string, d time.Duration, err error) {
	if m == nil {
		return
	}
	res := "ok"
	if err != nil {
		res = "fail"
	}
	m.checks.WithLabelValues(kind, res).Observe(d.Seconds())
}

// transition records a state change of an endpoint checked by kind.
func (m *metrics) transition(kind string, up bool) {
	if m == nil {
		return
	}
	to := "down"
	if up {
		to = "up"
	}
	m.transitions.WithLabelValues(kind, to).Inc()
}
