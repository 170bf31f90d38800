package dnsserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
)

// EtcdSource watches the routing keys (store.RoutingPrefix, one JSON
// routing.Route per service) in etcd. When the store cannot be reached
// (a failed read, a cancelled watch, or a failed liveness probe) it sends
// the last table marked stale, keeps it being served, and resynchronises
// when the store is back.
type EtcdSource struct {
	l      latest
	cli    *clientv3.Client
	prefix string
	probe  time.Duration
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// EtcdOptions tunes an EtcdSource.
type EtcdOptions struct {
	// Prefix is the key prefix (default store.RoutingPrefix).
	Prefix string
	// Probe is how often the store's reachability is checked, and the
	// timeout of each check (default 2s).
	Probe time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// NewEtcdSource starts watching through cli until ctx is done or Close is
// called. It does not own cli.
func NewEtcdSource(ctx context.Context, cli *clientv3.Client, opts EtcdOptions) *EtcdSource {
	if opts.Prefix == "" {
		opts.Prefix = store.RoutingPrefix
	}
	if opts.Probe <= 0 {
		opts.Probe = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &EtcdSource{l: newLatest(), cli: cli, prefix: opts.Prefix, probe: opts.Probe, log: opts.Logger, cancel: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

// Updates implements Source.
func (s *EtcdSource) Updates() <-chan *routing.Table { return s.l.ch }

// Close stops the watch and waits for it; safe to call twice.
func (s *EtcdSource) Close() error {
	s.once.Do(func() { s.cancel() })
	<-s.done
	return nil
}

var _ Source = (*EtcdSource)(nil)

// etcdState is the table being assembled from the keys.
type etcdState struct {
	routes map[string]*routing.Route
	rev    int64
	last   *routing.Table
	stale  bool
	since  time.Time
}

func (st *etcdState) table() *routing.Table {
	t := &routing.Table{Routes: make(map[string]*routing.Route, len(st.routes))}
	for k, v := range st.routes {
		t.Routes[k] = v
		t.Revision = max(t.Revision, v.Revision)
	}
	t.Revision = max(t.Revision, st.rev)
	return t
}

func (s *EtcdSource) markStale(st *etcdState, why error) {
	if st.stale {
		return
	}
	st.stale, st.since = true, time.Now()
	s.log.Warn("dns: routing store unreachable; serving the last table", "err", why, "since", st.since)
	if st.last == nil {
		// Never reached the store: declared endpoints, marked stale.
		st.last = &routing.Table{Routes: map[string]*routing.Route{}}
	}
	t := *st.last
	t.Stale, t.StaleSince = true, st.since
	s.l.send(&t)
}

func (s *EtcdSource) decode(st *etcdState, key string, value []byte, modRev int64) {
	name := strings.TrimPrefix(key, s.prefix)
	var r routing.Route
	if err := json.Unmarshal(value, &r); err != nil {
		s.log.Warn("dns: bad routing value ignored", "key", key, "err", err)
		return
	}
	if r.Service == "" {
		r.Service = name
	}
	if r.Revision == 0 {
		r.Revision = modRev
	}
	st.routes[name] = &r
}

func (s *EtcdSource) run(ctx context.Context) {
	defer close(s.done)
	st := &etcdState{}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if err := s.session(ctx, st); err != nil && ctx.Err() == nil {
			s.markStale(st, err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, s.probe)
		} else {
			backoff = 100 * time.Millisecond
		}
	}
}

// session reads every route, then follows the watch until it fails.
func (s *EtcdSource) session(ctx context.Context, st *etcdState) error {
	gctx, cancel := context.WithTimeout(ctx, s.probe)
	resp, err := s.cli.Get(gctx, s.prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return err
	}
	st.routes = map[string]*routing.Route{}
	st.rev = 0
	for _, kv := range resp.Kvs {
		s.decode(st, string(kv.Key), kv.Value, kv.ModRevision)
	}
	s.publish(st)
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	probe := time.NewTicker(s.probe)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-probe.C:
			// A watch stays silent when the member is gone; ask for quorum.
			pctx, pcancel := context.WithTimeout(ctx, s.probe)
			_, err := s.cli.Get(pctx, s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			pcancel()
			if err != nil {
				return err
			}
			if st.stale {
				return nil // back: resynchronise
			}
		case wr, ok := <-wch:
			if !ok {
				return ctx.Err()
			}
			if err := wr.Err(); err != nil {
				return err
			}
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				if ev.Type == clientv3.EventTypeDelete {
					delete(st.routes, strings.TrimPrefix(key, s.prefix))
				} else {
					s.decode(st, key, ev.Kv.Value, ev.Kv.ModRevision)
				}
				st.rev = max(st.rev, ev.Kv.ModRevision)
			}
			s.publish(st)
		}
	}
}

func (s *EtcdSource) publish(st *etcdState) {
	t := st.table()
	if st.stale {
		s.log.Info("dns: routing store reachable again", "stale_for", time.Since(st.since).Round(time.Millisecond))
	}
	st.stale, st.since = false, time.Time{}
	st.last = t
	s.l.send(t)
}
