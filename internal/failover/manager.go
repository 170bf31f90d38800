package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// SiteVerdict answers whether a site is down by the leader's verdict.
type SiteVerdict func(ctx context.Context, site string) (bool, error)

// Config configures a Manager. Datastore, Engine and Client are required.
type Config struct {
	// Datastore is the topology datastore to manage.
	Datastore *topology.Datastore
	// Engine drives its servers.
	Engine Engine
	// Client is the etcd client for epochs, routing and the audit log.
	Client *clientv3.Client
	// SiteDown is the verdict source; nil means no verdict is ever down
	// (only a human override can then start a failover).
	SiteDown SiteVerdict
	// Fencer fences a primary that cannot be reached; nil means such a
	// primary can only be fenced by a human override.
	Fencer Fencer
	// Who names this node in the audit log (default: the host name).
	Who string
	// Interval between Run's probes (default 1s).
	Interval time.Duration
	// ProbeTimeout bounds one probe (default 1s).
	ProbeTimeout time.Duration
	// FenceTimeout bounds the fencing step (default 10s).
	FenceTimeout time.Duration
	// PromoteTimeout bounds promotion and its confirmation (default 60s).
	PromoteTimeout time.Duration
	// CatchUpTimeout bounds a switchover's wait for the replica (default 30s).
	CatchUpTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Manager fails one datastore over. It is safe for concurrent use; several
// Managers (on several nodes) may act on one datastore: the epoch
// compare-and-swap lets only one promotion through.
type Manager struct {
	cfg     Config
	ds      *topology.Datastore
	members []Member
	tracker *Tracker
	seq     atomic.Int64
	// beforeClaim, when set (tests), runs right before the epoch CAS.
	beforeClaim func()

	mu          sync.Mutex
	readiness   Readiness
	lastPersist Observation
}

// New validates cfg and applies defaults.
func New(cfg Config) (*Manager, error) {
	if cfg.Datastore == nil || cfg.Engine == nil || cfg.Client == nil {
		return nil, errors.New("failover: Datastore, Engine and Client are required")
	}
	if cfg.Who == "" {
		cfg.Who, _ = os.Hostname()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = time.Second
	}
	if cfg.FenceTimeout <= 0 {
		cfg.FenceTimeout = 10 * time.Second
	}
	if cfg.PromoteTimeout <= 0 {
		cfg.PromoteTimeout = 60 * time.Second
	}
	if cfg.CatchUpTimeout <= 0 {
		cfg.CatchUpTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("datastore", cfg.Datastore.Name)
	return &Manager{cfg: cfg, ds: cfg.Datastore, members: Members(cfg.Datastore), tracker: NewTracker(0)}, nil
}

// Members returns the topology's members of ds: its primary, then replicas.
func Members(ds *topology.Datastore) []Member {
	out := []Member{{Site: ds.Primary, Address: ds.Address, Port: ds.Port}}
	for _, r := range ds.Replicas {
		out = append(out, Member{Site: r.Site, Address: r.Address, Port: r.Port, Mode: r.Mode})
	}
	return out
}

// Tracker returns the manager's position history (fed by Run and Check).
func (m *Manager) Tracker() *Tracker { return m.tracker }

// Request asks for a failover or a switchover.
type Request struct {
	// To is the site to promote in; empty: the best surviving replica.
	To string
	// Who asked and why (default: the manager's Who, "automatic").
	Who, Reason string
	// AssumeSiteDown, AssumeFenced and AcceptLoss are human overrides of
	// the rule's three conditions; each needs Who and Reason.
	AssumeSiteDown, AssumeFenced, AcceptLoss *Override
	// ExpectEpoch, when set, is the epoch the caller decided on; a
	// different current epoch refuses the request with ErrEpochConflict.
	ExpectEpoch *int64
}

// Result describes a completed promotion.
type Result struct {
	Epoch    Epoch    `json:"epoch"`
	Decision Decision `json:"-"`
	// FencedBy is how the old primary was fenced: "direct", "stonith",
	// "override" or, for a switchover, "switchover".
	FencedBy string `json:"fencedBy"`
	// Durations of the steps.
	Fence, Promote, Total time.Duration
}

// current returns the epoch, its revision and the member holding the
// primary role.
func (m *Manager) current(ctx context.Context) (Epoch, int64, Member, error) {
	ep, rev, err := ReadEpoch(ctx, m.cfg.Client, m.ds.Name)
	if err != nil {
		return ep, rev, Member{}, err
	}
	if ep.Epoch == 0 {
		return ep, rev, m.members[0], nil
	}
	return ep, rev, ep.Primary, nil
}

func (m *Manager) probe(ctx context.Context, mem Member) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
	defer cancel()
	return m.cfg.Engine.Probe(ctx, mem)
}

// candidates probes every member but primary, concurrently.
func (m *Manager) candidates(ctx context.Context, primary Member) []Candidate {
	var out []Candidate
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, mem := range m.members {
		if mem.Same(primary) {
			continue
		}
		wg.Add(1)
		go func(mem Member) {
			defer wg.Done()
			c := Candidate{Member: mem}
			st, err := m.probe(ctx, mem)
			if err != nil {
				c.Err = err.Error()
			} else {
				c.Reachable, c.State = true, st
				c.LagBytes, c.LagTime, c.LagKnown = m.tracker.Lag(st.Position)
			}
			if m.cfg.SiteDown != nil {
				if down, err := m.cfg.SiteDown(ctx, mem.Site); err == nil {
					c.SiteDown = down
				}
			}
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		}(mem)
	}
	wg.Wait()
	// Keep topology order for stable output.
	order := map[string]int{}
	for i, mem := range m.members {
		order[mem.Addr()] = i
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && order[out[j].Member.Addr()] < order[out[j-1].Member.Addr()]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (m *Manager) who(req Request) (string, string) {
	who, why := req.Who, req.Reason
	if who == "" {
		who = m.cfg.Who
	}
	if why == "" {
		why = "automatic"
	}
	return who, why
}

// Failover promotes a replica in a surviving site after the primary's site
// was lost, following the rule (see Evaluate): site down, old primary
// fenced, lag within RPO, each or its override. The epoch is claimed with a
// compare-and-swap before promotion; routing flips after the promotion is
// confirmed. Refusals are recorded in the audit log too.
func (m *Manager) Failover(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	who, why := m.who(req)
	ep, rev, primary, err := m.current(ctx)
	if err != nil {
		return Result{}, err
	}
	if req.ExpectEpoch != nil && *req.ExpectEpoch != ep.Epoch {
		return Result{}, fmt.Errorf("%w: expected epoch %d, store has %d", ErrEpochConflict, *req.ExpectEpoch, ep.Epoch)
	}
	in := RuleInput{
		Primary:        primary,
		AssumeSiteDown: req.AssumeSiteDown,
		AssumeFenced:   req.AssumeFenced,
		RPO:            m.ds.RPO,
		AcceptLoss:     req.AcceptLoss,
		To:             req.To,
	}
	if m.cfg.SiteDown != nil {
		down, err := m.cfg.SiteDown(ctx, primary.Site)
		if err != nil {
			return Result{}, fmt.Errorf("site verdict for %s: %w", primary.Site, err)
		}
		in.SiteDown = down
	}
	if !in.SiteDown && in.AssumeSiteDown == nil {
		// Do not probe or fence anything while the site is up.
		d := Evaluate(in)
		m.audit(ctx, Event{Kind: "failover-refused", Who: who, Reason: why, Epoch: ep.Epoch, From: primary, Error: d.Err.Error()})
		return Result{Decision: d}, d.Err
	}
	if err := m.loadObservation(ctx, primary); err != nil {
		m.cfg.Logger.Warn("no stored observation", "err", err)
	}
	in.Candidates = m.candidates(ctx, primary)
	d := Evaluate(in)
	// A replica that missed one probe (a loaded host, a lost packet) gets
	// two more chances before the failover is refused for want of one.
	for try := 0; try < 2 && errors.Is(d.Err, ErrNoCandidate) && anyUnreachable(in.Candidates); try++ {
		select {
		case <-ctx.Done():
			return Result{Decision: d}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		in.Candidates = m.candidates(ctx, primary)
		d = Evaluate(in)
	}
	if d.Err != nil {
		m.audit(ctx, Event{Kind: "failover-refused", Who: who, Reason: why, Epoch: ep.Epoch, From: primary, Notes: d.Notes, Error: d.Err.Error(), Overrides: overrides(req)})
		return Result{Decision: d}, d.Err
	}
	chosen := d.Chosen.Member

	// Fence the old primary: directly when reachable, else STONITH.
	fstart := time.Now()
	fencedBy := ""
	fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	// No new primary yet: following a replica that is not promoted could
	// make a replication loop (Redis). The old primary follows after.
	ferr := m.cfg.Engine.Fence(fctx, primary, Member{})
	if ferr == nil {
		fencedBy = "direct"
	} else if m.cfg.Fencer != nil {
		if serr := m.cfg.Fencer.Fence(fctx, primary); serr == nil {
			fencedBy = "stonith"
		} else {
			ferr = fmt.Errorf("direct: %v; stonith: %w", ferr, serr)
		}
	}
	cancel()
	in.FenceChecked, in.Fenced = true, fencedBy != ""
	if fencedBy == "" && req.AssumeFenced != nil {
		fencedBy = "override"
	}
	fenceTook := time.Since(fstart)
	d = Evaluate(in)
	if d.Err != nil {
		m.cfg.Logger.Warn("fence failed", "primary", primary.String(), "err", ferr)
		m.audit(ctx, Event{Kind: "failover-refused", Who: who, Reason: why, Epoch: ep.Epoch, From: primary, Notes: d.Notes, Error: fmt.Sprintf("%v (%v)", d.Err, ferr), Overrides: overrides(req)})
		return Result{Decision: d}, fmt.Errorf("%w: %v", d.Err, ferr)
	}
	next := Epoch{
		Datastore: m.ds.Name, Epoch: ep.Epoch + 1, Primary: chosen, Previous: primary,
		State: EpochPromoting, At: time.Now().UTC(), Who: who, Reason: why,
		LossAccepted: d.LossAccepted, LagBytes: d.Chosen.LagBytes, LagTime: d.Chosen.LagTime,
	}
	res, err := m.promote(ctx, rev, next, d, start)
	res.FencedBy, res.Fence = fencedBy, fenceTook
	if err != nil {
		return res, err
	}
	if fencedBy == "direct" {
		// The old primary is reachable: make it follow the new one where
		// the engine can (Redis: REPLICAOF, a full resync).
		fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
		if err := m.cfg.Engine.Fence(fctx, primary, chosen); err != nil {
			m.cfg.Logger.Warn("old primary does not follow the new one yet", "member", primary.String(), "err", err)
		}
		cancel()
	}
	m.audit(ctx, Event{Kind: "failover", Who: who, Reason: why, Epoch: next.Epoch, From: primary, To: chosen,
		LossAccepted: d.LossAccepted, LagBytes: next.LagBytes, LagTime: next.LagTime, FencedBy: fencedBy,
		Notes: d.Notes, Overrides: overrides(req)})
	return res, nil
}

// promote claims the epoch, promotes next.Primary, confirms it accepts
// writes, marks the epoch promoted and flips routing.
func (m *Manager) promote(ctx context.Context, rev int64, next Epoch, d Decision, start time.Time) (Result, error) {
	res := Result{Decision: d}
	if m.beforeClaim != nil {
		m.beforeClaim()
	}
	newRev, err := CompareAndSwapEpoch(ctx, m.cfg.Client, rev, next)
	if err != nil {
		return res, err
	}
	pstart := time.Now()
	pctx, cancel := context.WithTimeout(ctx, m.cfg.PromoteTimeout)
	defer cancel()
	err = m.cfg.Engine.Promote(pctx, next.Primary)
	if err == nil {
		var st State
		st, err = m.cfg.Engine.Probe(pctx, next.Primary)
		if err == nil && (st.Role != RolePrimary || !st.Writable) {
			err = fmt.Errorf("promoted %s reports role %s, writable %v", next.Primary, st.Role, st.Writable)
		}
	}
	res.Promote = time.Since(pstart)
	if err != nil {
		failed := next
		failed.State = EpochFailed
		_, _ = CompareAndSwapEpoch(context.WithoutCancel(ctx), m.cfg.Client, newRev, failed)
		m.audit(ctx, Event{Kind: "promote-failed", Who: next.Who, Reason: next.Reason, Epoch: next.Epoch, From: next.Previous, To: next.Primary, Error: err.Error()})
		return res, fmt.Errorf("promote %s: %w", next.Primary, err)
	}
	done := next
	done.State = EpochPromoted
	if _, err := CompareAndSwapEpoch(ctx, m.cfg.Client, newRev, done); err != nil {
		return res, err
	}
	m.tracker.Reset()
	if err := m.route(ctx, next); err != nil {
		return res, err
	}
	res.Epoch = done
	res.Total = time.Since(start)
	m.cfg.Logger.Info("promoted", "epoch", done.Epoch, "primary", done.Primary.String(), "previous", done.Previous.String(),
		"lossAccepted", done.LossAccepted, "took", res.Total)
	return res, nil
}

// RouteKey returns the etcd key of the datastore's routing entry.
func RouteKey(datastore string) string { return store.RoutingPrefix + datastore }

// route points the datastore's routing entry (and so its DNS name) at the
// epoch's primary.
func (m *Manager) route(ctx context.Context, ep Epoch) error {
	p := ep.Primary
	r := routing.Route{
		Service:   m.ds.Name,
		Policy:    topology.PolicyFailover,
		Targets:   []routing.Target{{ID: m.ds.Name + "/" + p.Site + "/" + p.Addr(), Site: p.Site, Address: p.Address, Port: p.Port}},
		Reason:    fmt.Sprintf("epoch %d: %s promoted (%s)", ep.Epoch, p, ep.Reason),
		UpdatedAt: ep.At,
	}
	val, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := m.cfg.Client.Put(ctx, RouteKey(m.ds.Name), string(val)); err != nil {
		return fmt.Errorf("write route of %s: %w", m.ds.Name, err)
	}
	return nil
}

// ReadRoute returns the datastore's routing entry, or nil when none exists.
func ReadRoute(ctx context.Context, cli *clientv3.Client, datastore string) (*routing.Route, error) {
	resp, err := cli.Get(ctx, RouteKey(datastore))
	if err != nil {
		return nil, fmt.Errorf("read route of %s: %w", datastore, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var r routing.Route
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return nil, fmt.Errorf("decode route of %s: %w", datastore, err)
	}
	r.Revision = resp.Kvs[0].ModRevision
	return &r, nil
}

func overrides(req Request) map[string]Override {
	out := map[string]Override{}
	if req.AssumeSiteDown != nil {
		out["siteDown"] = *req.AssumeSiteDown
	}
	if req.AssumeFenced != nil {
		out["fenced"] = *req.AssumeFenced
	}
	if req.AcceptLoss != nil {
		out["acceptDataLoss"] = *req.AcceptLoss
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func anyUnreachable(cs []Candidate) bool {
	for _, c := range cs {
		if !c.Reachable {
			return true
		}
	}
	return false
}
