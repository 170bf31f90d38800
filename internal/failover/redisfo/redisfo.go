// Package redisfo is firebreak's Redis failover engine (redis/go-redis/v9).
//
//   - Probe: INFO replication (role, master_repl_offset, link status) and
//     CONFIG GET maxmemory.
//   - Fence (reachable): CLIENT PAUSE WRITE, CONFIG SET
//     min-replicas-to-write to an unreachable number (a master then refuses
//     writes even if it is restarted as a master), REPLICAOF the new
//     primary, CONFIG REWRITE when the server has a config file, CLIENT
//     UNPAUSE.
//   - Promote: min-replicas-to-write 0, REPLICAOF NO ONE.
//   - Resync: REPLICAOF the new primary (a full resync discards whatever
//     the old primary wrote after the fork).
package redisfo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firebreak/firebreak/internal/failover"
)

// FenceMinReplicas is the min-replicas-to-write a fenced member gets: more
// replicas than any deployment has, so it refuses every write.
const FenceMinReplicas = 1000

// Options configures the engine.
type Options struct {
	// Username and Password for AUTH; optional.
	Username, Password string
	// DialTimeout bounds each connection (default 2s).
	DialTimeout time.Duration
	// PauseFor is how long StopWrites pauses writers at most (default 60s):
	// an abandoned switchover never blocks clients for longer.
	PauseFor time.Duration
}

// Engine drives Redis servers. It is safe for concurrent use.
type Engine struct {
	o Options
}

// New returns an engine with o's defaults applied.
func New(o Options) *Engine {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.PauseFor <= 0 {
		o.PauseFor = 60 * time.Second
	}
	return &Engine{o: o}
}

// Name returns "redis".
func (e *Engine) Name() string { return "redis" }

func (e *Engine) client(m failover.Member) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: m.Addr(), Username: e.o.Username, Password: e.o.Password,
		DialTimeout: e.o.DialTimeout, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		MaxRetries: -1, PoolSize: 1,
	})
}

// ParseInfo parses an INFO section into key/value pairs.
func ParseInfo(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// Probe returns the server's role and replication offset.
func (e *Engine) Probe(ctx context.Context, m failover.Member) (failover.State, error) {
	c := e.client(m)
	defer c.Close()
	var st failover.State
	s, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return st, fmt.Errorf("probe %s: %w", m.Addr(), err)
	}
	info := ParseInfo(s)
	off, _ := strconv.ParseUint(info["master_repl_offset"], 10, 64)
	st.Position = off
	if mm, err := c.ConfigGet(ctx, "maxmemory").Result(); err == nil {
		st.Capacity, _ = strconv.ParseInt(mm["maxmemory"], 10, 64)
	}
	switch info["role"] {
	case "slave":
		st.Role = failover.RoleReplica
		st.Upstream = info["master_host"] + ":" + info["master_port"]
		st.Streaming = info["master_link_status"] == "up"
		if v, err := strconv.ParseUint(info["slave_repl_offset"], 10, 64); err == nil && v > st.Position {
			st.Position = v
		}
	case "master":
		st.Role = failover.RolePrimary
		st.Writable = true
		if mr, err := c.ConfigGet(ctx, "min-replicas-to-write").Result(); err == nil {
			need, _ := strconv.Atoi(mr["min-replicas-to-write"])
			if need > 0 {
				good, _ := strconv.Atoi(info["min_slaves_good_slaves"])
				st.Writable = good >= need
			}
		}
		n, _ := strconv.Atoi(info["connected_slaves"])
		for i := 0; i < n; i++ {
			v := info["slave"+strconv.Itoa(i)]
			kv := map[string]string{}
			for _, f := range strings.Split(v, ",") {
				if k, val, ok := strings.Cut(f, "="); ok {
					kv[k] = val
				}
			}
			p, _ := strconv.ParseUint(kv["offset"], 10, 64)
			lag, _ := strconv.Atoi(kv["lag"])
			st.Replicas = append(st.Replicas, failover.ReplicaView{
				Name: "slave" + strconv.Itoa(i), Addr: kv["ip"] + ":" + kv["port"],
				Position: p, Lag: time.Duration(lag) * time.Second,
			})
		}
	default:
		return st, fmt.Errorf("probe %s: unknown role %q", m.Addr(), info["role"])
	}
	return st, nil
}

// StopWrites pauses writers (CLIENT PAUSE WRITE); replication continues.
func (e *Engine) StopWrites(ctx context.Context, m failover.Member) error {
	c := e.client(m)
	defer c.Close()
	ms := strconv.FormatInt(e.o.PauseFor.Milliseconds(), 10)
	if err := c.Do(ctx, "CLIENT", "PAUSE", ms, "WRITE").Err(); err != nil {
		return fmt.Errorf("pause writes on %s: %w", m.Addr(), err)
	}
	return nil
}

// ResumeWrites ends the pause.
func (e *Engine) ResumeWrites(ctx context.Context, m failover.Member) error {
	c := e.client(m)
	defer c.Close()
	if err := c.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		return fmt.Errorf("unpause %s: %w", m.Addr(), err)
	}
	return nil
}

// Fence stops writes on a reachable old primary for good and makes it a
// replica of newPrimary (when newPrimary is set).
func (e *Engine) Fence(ctx context.Context, m, newPrimary failover.Member) error {
	c := e.client(m)
	defer c.Close()
	ms := strconv.FormatInt(e.o.PauseFor.Milliseconds(), 10)
	if err := c.Do(ctx, "CLIENT", "PAUSE", ms, "WRITE").Err(); err != nil {
		return fmt.Errorf("fence %s: pause: %w", m, err)
	}
	if err := c.ConfigSet(ctx, "min-replicas-to-write", strconv.Itoa(FenceMinReplicas)).Err(); err != nil {
		return fmt.Errorf("fence %s: min-replicas: %w", m, err)
	}
	if newPrimary.Address != "" {
		if err := c.Do(ctx, "REPLICAOF", newPrimary.Address, strconv.Itoa(newPrimary.Port)).Err(); err != nil {
			return fmt.Errorf("fence %s: replicaof: %w", m, err)
		}
	}
	_ = c.ConfigRewrite(ctx).Err() // no config file: the fence lasts until restart
	if err := c.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		return fmt.Errorf("fence %s: unpause: %w", m, err)
	}
	return nil
}

// Promote makes the replica a master that accepts writes.
func (e *Engine) Promote(ctx context.Context, m failover.Member) error {
	c := e.client(m)
	defer c.Close()
	if err := c.ConfigSet(ctx, "min-replicas-to-write", "0").Err(); err != nil {
		return fmt.Errorf("promote %s: min-replicas: %w", m, err)
	}
	if err := c.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		return fmt.Errorf("promote %s: %w", m, err)
	}
	_ = c.ConfigRewrite(ctx).Err()
	_ = c.Do(ctx, "CLIENT", "UNPAUSE").Err()
	for {
		st, err := e.Probe(ctx, m)
		if err == nil && st.Role == failover.RolePrimary && st.Writable {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote %s: not writable: %w", m, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Resync makes m a replica of newPrimary; Redis then resynchronises it
// (fully when its history diverged).
func (e *Engine) Resync(ctx context.Context, m, newPrimary failover.Member) error {
	c := e.client(m)
	defer c.Close()
	if err := c.Do(ctx, "REPLICAOF", newPrimary.Address, strconv.Itoa(newPrimary.Port)).Err(); err != nil {
		return fmt.Errorf("resync %s: %w", m, err)
	}
	if err := c.ConfigSet(ctx, "min-replicas-to-write", "0").Err(); err != nil {
		return fmt.Errorf("resync %s: %w", m, err)
	}
	_ = c.ConfigRewrite(ctx).Err()
	return nil
}

var _ failover.Engine = (*Engine)(nil)
