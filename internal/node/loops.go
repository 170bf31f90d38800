package node

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/firebreak/firebreak/internal/store"
)

// quorumTimeout bounds one quorum read.
func (n *Node) quorumTimeout() time.Duration {
	return max(2*n.cfg.QuorumInterval, 500*time.Millisecond)
}

// quorumLoop proves, every QuorumInterval, that a linearizable read
// succeeds; it flips Stale accordingly and drops leadership when stale.
func (n *Node) quorumLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.QuorumInterval)
	defer t.Stop()
	var lastMove time.Time
	for {
		rctx, cancel := context.WithTimeout(ctx, n.quorumTimeout())
		_, err := n.cli.Get(rctx, store.TopologyCurrent)
		cancel()
		if ctx.Err() != nil {
			return
		}
		n.setQuorum(err)
		// Keep raft leadership off this node while it leads; raft may
		// have moved it back here since the election (a restart, an
		// election after a member's loss).
		if err == nil && !n.cfg.KeepRaftLeader && n.IsLeader() && time.Since(lastMove) > 5*time.Second {
			if m := n.member.Load(); m != nil && m.IsRaftLeader() {
				lastMove = time.Now()
				n.moveRaftLeader(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) setQuorum(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		n.lastOK = time.Now()
		if n.stale {
			n.stale, n.staleSince = false, time.Time{}
			n.staleChg.Notify()
			n.log.Info("store quorum reached")
		}
		return
	}
	if !n.stale {
		n.stale, n.staleSince = true, n.lastOK
		n.staleChg.Notify()
		n.log.Warn("store quorum lost: serving last good state", "stale_since", n.lastOK, "err", err)
		n.dropLeaderLocked("no quorum")
	}
}

// dropLeaderLocked ends this node's leadership (n.mu held).
func (n *Node) dropLeaderLocked(why string) {
	if n.leader == nil {
		return
	}
	n.leader.cancel()
	n.leader = nil
	n.leaderChg.Notify()
	n.log.Info("leadership ended", "why", why)
}

// sessionLoop keeps a lease, the liveness key and a campaign alive, one
// session generation at a time.
func (n *Node) sessionLoop(ctx context.Context) {
	for ctx.Err() == nil {
		n.runSession(ctx)
		sleep(ctx, 200*time.Millisecond)
	}
}

func (n *Node) runSession(ctx context.Context) {
	ttl := int64(n.cfg.LeaseTTL / time.Second)
	gctx, gcancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	grant, err := n.cli.Grant(gctx, ttl)
	gcancel()
	if err != nil {
		return // no quorum yet; Stale says so
	}
	s, err := concurrency.NewSession(n.cli, concurrency.WithLease(grant.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(ctx))
	if err != nil {
		return
	}
	pctx, pcancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	info := n.info
	info.Lease = int64(s.Lease())
	_, err = store.Put(pctx, n.cli, store.NodeKey(n.cfg.Name), info, clientv3.WithLease(s.Lease()))
	pcancel()
	if err != nil {
		s.Orphan()
		return
	}
	n.mu.Lock()
	n.lease = s.Lease()
	n.leaseCtx, n.leaseCancel = context.WithCancel(ctx)
	n.leaseChg.Notify()
	n.mu.Unlock()
	n.log.Debug("liveness published", "lease", int64(s.Lease()))

	e := concurrency.NewElection(s, store.ElectionKey(store.RoleLeader))
	cctx, ccancel := context.WithCancel(s.Ctx())
	defer ccancel()
	var errc chan error
	campaign := func() {
		errc = make(chan error, 1)
		n.bg.Add(1)
		go func(c chan error) {
			defer n.bg.Done()
			c <- e.Campaign(cctx, n.cfg.Name)
		}(errc)
	}
	campaign()
	elected := false

	end := func() {
		n.mu.Lock()
		n.dropLeaderLocked("session ended")
		graceful := n.graceful
		n.lease = 0
		n.leaseCancel()
		n.leaseChg.Notify()
		n.mu.Unlock()
		ccancel()
		if errc != nil {
			// A cancelled campaign cleans up with the client's context,
			// which blocks without quorum; Shutdown closing the client
			// ends it, and n.bg waits for it.
			select {
			case <-errc:
			case <-time.After(n.cfg.LeaseTTL):
			}
		}
		if ctx.Err() != nil && graceful {
			tctx, cancel := context.WithTimeout(context.Background(), n.cfg.LeaseTTL)
			if elected {
				if err := e.Resign(tctx); err != nil {
					n.log.Warn("resign leadership", "err", err)
				}
			}
			_, _ = n.cli.Delete(tctx, store.NodeKey(n.cfg.Name))
			s.Orphan()
			if _, err := n.cli.Revoke(tctx, s.Lease()); err != nil {
				n.log.Warn("revoke lease", "err", err)
			}
			cancel()
			return
		}
		s.Orphan()
	}

	for {
		staleCh := n.staleChg.Wait()
		select {
		case <-ctx.Done():
			end()
			return
		case <-s.Done():
			if ctx.Err() == nil {
				n.log.Warn("liveness lease lost", "lease", int64(s.Lease()))
			}
			end()
			return
		case err := <-errc:
			errc = nil
			if err != nil {
				if ctx.Err() != nil || s.Ctx().Err() != nil {
					continue // the select above ends the session
				}
				n.log.Warn("campaign failed, retrying", "err", err)
				sleep(ctx, 200*time.Millisecond)
				campaign()
				continue
			}
			elected = true
			n.log.Info("won the leader election")
			n.tryLead(ctx, e)
		case <-staleCh:
			if elected {
				n.tryLead(ctx, e)
			}
		}
	}
}

// tryLead becomes leader if the store has quorum and this node's election
// key is still in place (it may have expired during a partition).
func (n *Node) tryLead(ctx context.Context, e *concurrency.Election) {
	if stale, _ := n.Stale(); stale {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, n.quorumTimeout())
	resp, err := n.cli.Get(rctx, e.Key())
	cancel()
	if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != e.Rev() {
		return
	}
	n.mu.Lock()
	if n.stale || n.leader != nil || ctx.Err() != nil {
		n.mu.Unlock()
		return
	}
	lctx, lcancel := context.WithCancel(ctx)
	n.leader = &leaderState{ctx: lctx, cancel: lcancel, key: e.Key(), rev: e.Rev()}
	n.leaderName = n.cfg.Name
	n.leaderChg.Notify()
	n.mu.Unlock()
	n.log.Info("leading")
	if !n.cfg.KeepRaftLeader {
		n.moveRaftLeader(ctx)
	}
}

// moveRaftLeader hands etcd's raft leadership to another reachable member
// when this node's member holds it, so one site's loss never takes both
// leaderships at once.
func (n *Node) moveRaftLeader(ctx context.Context) {
	self := n.member.Load()
	if self == nil || !self.IsRaftLeader() {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ml, err := n.cli.MemberList(rctx)
	if err != nil {
		return
	}
	for _, m := range ml.Members {
		if m.ID == self.ID() || m.IsLearner || len(m.ClientURLs) == 0 {
			continue
		}
		if _, err := n.cli.Status(rctx, m.ClientURLs[0]); err != nil {
			continue
		}
		if _, err := n.cli.MoveLeader(rctx, m.ID); err != nil {
			n.log.Debug("move raft leader", "to", m.Name, "err", err)
			return
		}
		n.log.Debug("moved raft leadership away", "to", m.Name)
		return
	}
}

// leaderWatchLoop keeps Leader() current by watching the election prefix.
func (n *Node) leaderWatchLoop(ctx context.Context) {
	prefix := store.ElectionKey(store.RoleLeader) + "/"
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, n.quorumTimeout())
		resp, err := n.cli.Get(rctx, prefix, clientv3.WithFirstCreate()...)
		cancel()
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		name := ""
		if len(resp.Kvs) > 0 {
			name = string(resp.Kvs[0].Value)
		}
		n.mu.Lock()
		if n.leaderName != name {
			n.leaderName = name
			n.leaderChg.Notify()
		}
		n.mu.Unlock()
		n.waitChange(ctx, prefix, resp.Header.Revision, true)
	}
}

// waitChange blocks until something under key (a prefix when prefix) changes
// after rev, the watch breaks, or ctx ends.
func (n *Node) waitChange(ctx context.Context, key string, rev int64, prefix bool) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(rev + 1)}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	for resp := range n.cli.Watch(wctx, key, opts...) {
		if resp.Err() != nil || resp.Canceled || len(resp.Events) > 0 {
			return
		}
	}
}

// topologyLoop publishes the startup topology when the store has none and
// then follows the store's current topology.
func (n *Node) topologyLoop(ctx context.Context) {
	var badRev int64
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, n.quorumTimeout())
		resp, err := n.cli.Get(rctx, store.TopologyCurrent)
		cancel()
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		if len(resp.Kvs) == 0 {
			if len(n.cfg.TopologySource) == 0 {
				n.waitChange(ctx, store.TopologyCurrent, resp.Header.Revision, false)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, n.quorumTimeout())
			rev, _, err := store.PublishTopology(pctx, n.cli, n.cfg.Topology.Source, n.cfg.TopologySource)
			cancel()
			if err != nil {
				n.log.Warn("publish startup topology", "err", err)
				sleep(ctx, 200*time.Millisecond)
			} else {
				n.log.Info("published startup topology", "rev", rev, "file", n.cfg.Topology.Source)
			}
			continue
		}
		rev, err := parseRev(resp.Kvs[0].Value)
		if err == nil && rev != n.topo.Load().rev && rev != badRev {
			lctx, cancel := context.WithTimeout(ctx, n.quorumTimeout())
			t, _, lerr := store.LoadTopologyRev(lctx, n.cli, rev)
			cancel()
			switch {
			case lerr == nil:
				n.topo.Store(&topoState{t: t, rev: rev})
				n.topoChanged.Notify()
				n.log.Info("topology loaded", "rev", rev)
				if t.Node(n.cfg.Name) == nil && len(t.Nodes) > 0 {
					n.log.Warn("topology does not list this node", "rev", rev)
				}
			case ctx.Err() != nil:
				return
			case errors.Is(lerr, context.DeadlineExceeded):
				sleep(ctx, 200*time.Millisecond)
				continue
			default:
				badRev = rev
				n.log.Error("stored topology is invalid; keeping the current one", "rev", rev, "err", lerr)
			}
		}
		n.waitChange(ctx, store.TopologyCurrent, resp.Header.Revision, false)
	}
}

// memberLoop stops the node when its embedded member fails.
func (n *Node) memberLoop(ctx context.Context) {
	for {
		chg := n.memberChg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-chg:
		case err, ok := <-n.member.Load().Err():
			if ok && err != nil && ctx.Err() == nil {
				n.log.Error("embedded store failed; stopping the node", "err", err)
				go n.Close()
				<-ctx.Done()
				return
			}
			if !ok {
				// Stopped on purpose (tests): wait for a replacement.
				select {
				case <-ctx.Done():
					return
				case <-chg:
				}
			}
		}
	}
}

// stopMember stops the embedded member as a site losing its store would;
// the node keeps running and turns stale. Tests use it.
func (n *Node) stopMember() { n.member.Load().Close() }

// restartMember starts the embedded member again from its data dir.
func (n *Node) restartMember() error {
	m, err := store.StartMember(n.member.Load().Config())
	if err != nil {
		return err
	}
	n.member.Store(m)
	n.memberChg.Notify()
	return nil
}
