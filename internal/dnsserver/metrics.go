package dnsserver

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var qtypeNames = [...]string{"A", "AAAA", "SRV", "TXT", "SOA", "NS", "CNAME", "ANY", "AXFR", "IXFR", "other"}

var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other"}

func qtypeIndex(t uint16) int {
	switch t {
	case typeA:
		return 0
	case typeAAAA:
		return 1
	case typeSRV:
		return 2
	case typeTXT:
		return 3
	case typeSOA:
		return 4
	case typeNS:
		return 5
	case typeCNAME:
		return 6
	case typeANY:
		return 7
	case typeAXFR:
		return 8
	case typeIXFR:
		return 9
	}
	return 10
}

func rcodeIndex(r int) int {
	switch {
	case r >= 0 && r <= 5:
		return r
	case r == rcodeBadVers:
		return 6
	}
	return 7
}

// workerStats are one worker's counters. Only atomic adds on the hot path.
type workerStats struct {
	queries [len(qtypeNames)][len(rcodeNames)]atomic.Uint64
	rrlDrop atomic.Uint64
	rrlSlip atomic.Uint64
	_       [64]byte // keep workers' counters on separate cache lines
}

func (s *workerStats) count(qtype uint16, rcode int) {
	s.queries[qtypeIndex(qtype)][rcodeIndex(rcode)].Add(1)
}

// collector exports the server's counters to Prometheus.
type collector struct {
	s        *Server
	queries  *prometheus.Desc
	revision *prometheus.Desc
	stale    *prometheus.Desc
	builds   *prometheus.Desc
	rrl      *prometheus.Desc
}

func newCollector(s *Server) *collector {
	return &collector{
		s: s,
		queries: prometheus.NewDesc("firebreak_dns_queries_total",
			"DNS queries answered, by query type and response code.", []string{"qtype", "rcode"}, nil),
		revision: prometheus.NewDesc("firebreak_dns_answer_table_revision",
			"Routing revision of the answer tables being served.", nil, nil),
		stale: prometheus.NewDesc("firebreak_dns_stale_seconds",
			"Seconds since the routing source was last known good (0 when fresh).", nil, nil),
		builds: prometheus.NewDesc("firebreak_dns_table_builds_total",
			"Answer tables built and swapped in.", nil, nil),
		rrl: prometheus.NewDesc("firebreak_dns_rrl_limited_total",
			"UDP responses limited by response-rate limiting, by action.", []string{"action"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queries
	ch <- c.revision
	ch <- c.stale
	ch <- c.builds
	ch <- c.rrl
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var sums [len(qtypeNames)][len(rcodeNames)]uint64
	var drop, slip uint64
	for _, st := range c.s.allStats() {
		for i := range st.queries {
			for j := range st.queries[i] {
				sums[i][j] += st.queries[i][j].Load()
			}
		}
		drop += st.rrlDrop.Load()
		slip += st.rrlSlip.Load()
	}
	for i := range sums {
		for j := range sums[i] {
			if sums[i][j] > 0 {
				ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(sums[i][j]), qtypeNames[i], rcodeNames[j])
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.rrl, prometheus.CounterValue, float64(drop), "drop")
	ch <- prometheus.MustNewConstMetric(c.rrl, prometheus.CounterValue, float64(slip), "slip")
	tb := c.s.tables.Load()
	var rev, stale float64
	if tb != nil {
		rev = float64(tb.revision)
		if tb.stale && !tb.staleSince.IsZero() {
			stale = time.Since(tb.staleSince).Seconds()
		}
	}
	ch <- prometheus.MustNewConstMetric(c.revision, prometheus.GaugeValue, rev)
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, stale)
	ch <- prometheus.MustNewConstMetric(c.builds, prometheus.CounterValue, float64(c.s.builds.Load()))
}
