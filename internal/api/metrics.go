package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	mutations    *prometheus.CounterVec
	forwarded    prometheus.Counter
	streams      prometheus.Gauge
	changes      *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, node string, state view.State) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firebreak_api_requests_total",
			Help: "API requests by route pattern and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "firebreak_api_request_duration_seconds",
			Help: "API request latency by route pattern (event streams excluded).", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firebreak_api_auth_failures_total",
			Help: "Refused API calls by reason (no-token, bad-token, forbidden)."}, []string{"reason"}),
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firebreak_api_mutations_total",
			Help: "Authorised mutating calls by action."}, []string{"action"}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "firebreak_api_forwarded_total",
			Help: "Mutating calls forwarded to the leader."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "firebreak_api_event_streams",
			Help: "Open server-sent event streams."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firebreak_store_changes_total",
			Help: "Changes seen in the store by this node, by kind (routing = routing changes)."}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.authFailures, m.mutations, m.forwarded, m.streams, m.changes,
		&stateCollector{node: node, state: state}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// countEvents counts store changes by kind until ctx ends.
func (m *metrics) countEvents(ctx context.Context, st view.State) {
	for ev := range st.Subscribe(ctx) {
		m.changes.WithLabelValues(ev.Kind).Inc()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.m.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		if route != "GET /api/v1/events" {
			s.m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
	})
}

// stateCollector turns the current snapshot into gauges at scrape time.
type stateCollector struct {
	node  string
	state view.State
}

var (
	dSiteUp        = prometheus.NewDesc("firebreak_site_up", "1 when the leader's verdict for the site is up, 0 when down.", []string{"site"}, nil)
	dSiteEvacuated = prometheus.NewDesc("firebreak_site_evacuated", "1 when automation has taken the site out of routing.", []string{"site"}, nil)
	dSiteDrained   = prometheus.NewDesc("firebreak_site_drained", "1 when an active drain override covers the site.", []string{"site"}, nil)
	dEndpointUp    = prometheus.NewDesc("firebreak_endpoint_up", "1 when the leader's verdict for the endpoint is up, 0 when down.", []string{"service", "site", "endpoint"}, nil)
	dObservation   = prometheus.NewDesc("firebreak_observation_up", "One observer's opinion of one endpoint (1 up, 0 down).", []string{"observer", "endpoint"}, nil)
	dServiceState  = prometheus.NewDesc("firebreak_service_state", "1 for the service's current state (up, degraded, down, unknown).", []string{"service", "state"}, nil)
	dRouteRev      = prometheus.NewDesc("firebreak_route_revision", "Revision of the service's routing; it increases with every change.", []string{"service"}, nil)
	dRouteTargets  = prometheus.NewDesc("firebreak_route_targets", "Endpoints in the service's routing.", []string{"service"}, nil)
	dRouteFailOpen = prometheus.NewDesc("firebreak_route_fail_open", "1 when the service's routing fails open (every endpoint down).", []string{"service"}, nil)
	dOverrides     = prometheus.NewDesc("firebreak_overrides_active", "Active overrides by kind.", []string{"kind"}, nil)
	dAlarms        = prometheus.NewDesc("firebreak_alarms_active", "Raised alarms by kind.", []string{"kind"}, nil)
	dNodeAlive     = prometheus.NewDesc("firebreak_node_alive", "1 when the node holds a live lease.", []string{"node", "site"}, nil)
	dLeader        = prometheus.NewDesc("firebreak_leader", "1 for the node that holds the leader election.", []string{"leader"}, nil)
	dIsLeader      = prometheus.NewDesc("firebreak_is_leader", "1 when this node is the leader.", nil, nil)
	dQuorum        = prometheus.NewDesc("firebreak_store_quorum", "1 when this node's last linearizable store read succeeded.", nil, nil)
	dStale         = prometheus.NewDesc("firebreak_state_stale", "1 when this node serves a stale state (no store quorum).", nil, nil)
	dStaleSeconds  = prometheus.NewDesc("firebreak_state_stale_seconds", "Seconds since the state became stale (0 when fresh).", nil, nil)
	dRevision      = prometheus.NewDesc("firebreak_store_revision", "Store revision of the state this node serves.", nil, nil)
	dMember        = prometheus.NewDesc("firebreak_store_member_reachable", "1 when the etcd member answered a status request.", []string{"member"}, nil)
	dMemberDB      = prometheus.NewDesc("firebreak_store_member_db_size_bytes", "Size of the etcd member's database.", []string{"member"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dSiteUp, dSiteEvacuated, dSiteDrained, dEndpointUp, dObservation, dServiceState, dRouteRev,
		dRouteTargets, dRouteFailOpen, dOverrides, dAlarms, dNodeAlive, dLeader, dIsLeader, dQuorum, dStale, dStaleSeconds, dRevision, dMember, dMemberDB} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	snap, err := c.state.Snapshot(ctx)
	if err != nil {
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range snap.Sites {
		if s.State == decide.Up || s.State == view.StateDegraded || s.State == decide.Down {
			g(dSiteUp, b2f(s.State != decide.Down), s.Name)
		}
		g(dSiteEvacuated, b2f(s.Evacuated), s.Name)
		g(dSiteDrained, b2f(s.Drained != nil), s.Name)
	}
	for _, sv := range snap.Services {
		for _, st := range []string{view.StateUp, view.StateDegraded, view.StateDown, view.StateUnknown} {
			g(dServiceState, b2f(sv.State == st), sv.Name, st)
		}
		if sv.Route != nil {
			g(dRouteRev, float64(sv.Route.Revision), sv.Name)
			g(dRouteTargets, float64(len(sv.Route.Targets)), sv.Name)
			g(dRouteFailOpen, b2f(sv.Route.FailOpen), sv.Name)
		}
		for _, e := range sv.Endpoints {
			if e.Verdict != nil {
				g(dEndpointUp, b2f(e.State == decide.Up), sv.Name, e.Site, e.ID)
			}
			for _, o := range e.Opinions {
				g(dObservation, b2f(o.Up), o.Observer, e.ID)
			}
		}
	}
	kinds := map[string]int{}
	for _, o := range snap.Overrides {
		if o.Active {
			kinds[o.Kind]++
		}
	}
	for _, k := range []string{decide.KindDrain, decide.KindForceUp, decide.KindForceDown, decide.KindFreeze} {
		g(dOverrides, float64(kinds[k]), k)
	}
	alarms := map[string]int{}
	for _, a := range snap.Alarms {
		alarms[a.Kind]++
	}
	for k, n := range alarms {
		g(dAlarms, float64(n), k)
	}
	for _, n := range snap.Nodes {
		g(dNodeAlive, b2f(n.Alive), n.Name, n.Site)
	}
	if snap.Leader != "" {
		g(dLeader, 1, snap.Leader)
	}
	g(dIsLeader, b2f(snap.Leader == c.node))
	g(dQuorum, b2f(snap.Store.Quorum))
	g(dStale, b2f(snap.Stale))
	stale := 0.0
	if snap.Stale && !snap.StaleSince.IsZero() {
		stale = time.Since(snap.StaleSince).Seconds()
	}
	g(dStaleSeconds, stale)
	g(dRevision, float64(snap.Revision))
	for _, m := range snap.Store.Members {
		g(dMember, b2f(m.Reachable), m.Name)
		if m.DBSize > 0 {
			g(dMemberDB, float64(m.DBSize), m.Name)
		}
	}
}
