// Package pg is firebreak's PostgreSQL failover engine (jackc/pgx/v5).
//
//   - Probe: pg_is_in_recovery(), the WAL position (pg_current_wal_lsn on a
//     primary; the greater of pg_last_wal_receive_lsn and
//     pg_last_wal_replay_lsn on a replica), pg_stat_replication and
//     pg_stat_wal_receiver.
//   - Fence (reachable): ALTER SYSTEM SET default_transaction_read_only = on,
//     reload, wait until new sessions see it, terminate client sessions. The
//     setting lives in postgresql.auto.conf, so it survives a restart.
//     Optionally (ShutdownOnFence) the server is then shut down.
//   - Promote: pg_promote(wait => true), then the read-only setting is
//     reset and the engine waits until the server accepts writes.
//   - Resync: PostgreSQL needs pg_rewind or a fresh pg_basebackup on the
//     old primary's host; the engine calls a runbook hook for it.
package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firebreak/firebreak/internal/failover"
)

// ErrNoResyncHook is returned by Resync when no hook is configured.
var ErrNoResyncHook = errors.New("pg: resync needs a runbook hook (pg_rewind or re-clone)")

// Options configures the engine.
type Options struct {
	// User (default postgres), Password and Database (default postgres)
	// of a superuser connection (ALTER SYSTEM and pg_promote need it).
	User, Password, Database string
	// SSLMode is libpq's sslmode (default prefer).
	SSLMode string
	// ConnectTimeout bounds each connection attempt (default 2s).
	ConnectTimeout time.Duration
	// ShutdownOnFence shuts a reachable old primary down after making it
	// read-only (fast shutdown through COPY TO PROGRAM; superuser only).
	ShutdownOnFence bool
	// Resync runs the resync runbook for an old primary (pg_rewind, or
	// re-clone with pg_basebackup, then start as a standby of newPrimary).
	Resync func(ctx context.Context, old, newPrimary failover.Member) error
	// ResyncCommand is used when Resync is nil: argv run with
	// FIREBREAK_RESYNC_ADDRESS/PORT and FIREBREAK_NEW_PRIMARY_ADDRESS/PORT
	// in the environment.
	ResyncCommand []string
}

// Engine drives PostgreSQL servers. It opens a connection per operation,
// so it holds no state and is safe for concurrent use.
type Engine struct {
	o Options
}

// New returns an engine with o's defaults applied.
func New(o Options) *Engine {
	if o.User == "" {
		o.User = "postgres"
	}
	if o.Database == "" {
		o.Database = "postgres"
	}
	if o.SSLMode == "" {
		o.SSLMode = "prefer"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	return &Engine{o: o}
}

// Name returns "postgres".
func (e *Engine) Name() string { return "postgres" }

func (e *Engine) connect(ctx context.Context, m failover.Member) (*pgx.Conn, error) {
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s connect_timeout=%d",
		m.Address, m.Port, e.o.User, e.o.Database, e.o.SSLMode, max(1, int(e.o.ConnectTimeout/time.Second)))
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pg config: %w", err)
	}
	if e.o.Password != "" {
		cfg.Password = e.o.Password
	}
	cfg.ConnectTimeout = e.o.ConnectTimeout
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", m.Addr(), err)
	}
	return conn, nil
}

const probeSQL = `SELECT pg_is_in_recovery(),
  current_setting('default_transaction_read_only') = 'on',
  current_setting('max_connections')::bigint,
  CASE WHEN pg_is_in_recovery()
    THEN pg_wal_lsn_diff(GREATEST(COALESCE(pg_last_wal_receive_lsn(), '0/0'), COALESCE(pg_last_wal_replay_lsn(), '0/0')), '0/0')::bigint
    ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint END`

// Probe returns the server's role and WAL position.
func (e *Engine) Probe(ctx context.Context, m failover.Member) (failover.State, error) {
	conn, err := e.connect(ctx, m)
	if err != nil {
		return failover.State{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var st failover.State
	var recovery, readOnly bool
	var pos int64
	if err := conn.QueryRow(ctx, probeSQL).Scan(&recovery, &readOnly, &st.Capacity, &pos); err != nil {
		return st, fmt.Errorf("probe %s: %w", m.Addr(), err)
	}
	st.Position = uint64(pos)
	if recovery {
		st.Role = failover.RoleReplica
		var status, host string
		var port int32
		err := conn.QueryRow(ctx, `SELECT status, COALESCE(sender_host, ''), COALESCE(sender_port, 0) FROM pg_stat_wal_receiver`).Scan(&status, &host, &port)
		if err == nil {
			st.Streaming = status == "streaming"
			if host != "" {
				st.Upstream = host + ":" + strconv.Itoa(int(port))
			}
		}
		return st, nil
	}
	st.Role = failover.RolePrimary
	st.Writable = !readOnly
	rows, err := conn.Query(ctx, `SELECT application_name, COALESCE(host(client_addr), ''), sync_state IN ('sync', 'quorum'),
  COALESCE(pg_wal_lsn_diff(flush_lsn, '0/0')::bigint, 0), COALESCE(EXTRACT(epoch FROM replay_lag)::float8, 0)
  FROM pg_stat_replication`)
	if err != nil {
		return st, fmt.Errorf("probe %s replicas: %w", m.Addr(), err)
	}
	defer rows.Close()
	for rows.Next() {
		var v failover.ReplicaView
		var p int64
		var lag float64
		if err := rows.Scan(&v.Name, &v.Addr, &v.Sync, &p, &lag); err != nil {
			return st, fmt.Errorf("probe %s replicas: %w", m.Addr(), err)
		}
		v.Position, v.Lag = uint64(p), time.Duration(lag*float64(time.Second))
		st.Replicas = append(st.Replicas, v)
	}
	return st, rows.Err()
}

// setReadOnly persists default_transaction_read_only, reloads, waits until
// new sessions see it and, when turning it on, ends client sessions.
func (e *Engine) setReadOnly(ctx context.Context, m failover.Member, on bool) error {
	conn, err := e.connect(ctx, m)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	stmt, want := "ALTER SYSTEM RESET default_transaction_read_only", "off"
	if on {
		stmt, want = "ALTER SYSTEM SET default_transaction_read_only = on", "on"
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s on %s: %w", stmt, m.Addr(), err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload %s: %w", m.Addr(), err)
	}
	for {
		c2, err := e.connect(ctx, m)
		if err != nil {
			return err
		}
		var got string
		err = c2.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&got)
		c2.Close(context.WithoutCancel(ctx))
		if err != nil {
			return fmt.Errorf("check read-only on %s: %w", m.Addr(), err)
		}
		if got == want {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read-only %s not in effect on %s: %w", want, m.Addr(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if on {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`); err != nil {
			return fmt.Errorf("terminate sessions on %s: %w", m.Addr(), err)
		}
	}
	return nil
}

// StopWrites makes the primary read-only and ends client sessions;
// replication keeps flowing.
func (e *Engine) StopWrites(ctx context.Context, m failover.Member) error {
	return e.setReadOnly(ctx, m, true)
}

// ResumeWrites resets the read-only setting.
func (e *Engine) ResumeWrites(ctx context.Context, m failover.Member) error {
	return e.setReadOnly(ctx, m, false)
}

// Fence makes a reachable old primary read-only for good (the setting is
// in postgresql.auto.conf) and, with ShutdownOnFence, shuts it down. It
// fails when m cannot be reached; the caller then uses a Fencer.
func (e *Engine) Fence(ctx context.Context, m, _ failover.Member) error {
	if err := e.setReadOnly(ctx, m, true); err != nil {
		return fmt.Errorf("fence %s: %w", m, err)
	}
	if !e.o.ShutdownOnFence {
		return nil
	}
	return e.shutdown(ctx, m)
}

// shutdown asks the postmaster for a fast shutdown (SIGINT) from inside
// the server, then waits until it stops answering.
func (e *Engine) shutdown(ctx context.Context, m failover.Member) error {
	conn, err := e.connect(ctx, m)
	if err != nil {
		return err
	}
	var pidfile string
	err = conn.QueryRow(ctx, "SELECT pg_read_file('postmaster.pid')").Scan(&pidfile)
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("shutdown %s: read postmaster.pid: %w", m.Addr(), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(pidfile, "\n", 2)[0]))
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("shutdown %s: bad postmaster.pid: %w", m.Addr(), err)
	}
	_, _ = conn.Exec(ctx, fmt.Sprintf("COPY (SELECT 1) TO PROGRAM 'kill -INT %d'", pid))
	conn.Close(context.WithoutCancel(ctx))
	for {
		c2, err := e.connect(ctx, m)
		if err != nil {
			return nil // gone
		}
		c2.Close(context.WithoutCancel(ctx))
		select {
		case <-ctx.Done():
			return fmt.Errorf("shutdown %s: still answering: %w", m.Addr(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Promote runs pg_promote on the replica, resets a read-only setting left
// by an earlier fence, and returns once the server accepts writes.
func (e *Engine) Promote(ctx context.Context, m failover.Member) error {
	conn, err := e.connect(ctx, m)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var recovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil {
		return fmt.Errorf("promote %s: %w", m.Addr(), err)
	}
	if recovery {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
			return fmt.Errorf("pg_promote on %s: %w", m.Addr(), err)
		}
		if !ok {
			return fmt.Errorf("pg_promote on %s: not promoted within 60s", m.Addr())
		}
	}
	if err := e.setReadOnly(ctx, m, false); err != nil {
		return err
	}
	for {
		st, err := e.Probe(ctx, m)
		if err == nil && st.Role == failover.RolePrimary && st.Writable {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote %s: not writable: %w", m.Addr(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Resync runs the configured resync runbook for an old primary.
func (e *Engine) Resync(ctx context.Context, m, newPrimary failover.Member) error {
	if e.o.Resync != nil {
		return e.o.Resync(ctx, m, newPrimary)
	}
	if len(e.o.ResyncCommand) == 0 {
		return ErrNoResyncHook
	}
	argv := e.o.ResyncCommand
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"FIREBREAK_RESYNC_ADDRESS="+m.Address, "FIREBREAK_RESYNC_PORT="+strconv.Itoa(m.Port),
		"FIREBREAK_NEW_PRIMARY_ADDRESS="+newPrimary.Address, "FIREBREAK_NEW_PRIMARY_PORT="+strconv.Itoa(newPrimary.Port))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("resync %s: %w: %s", m, err, strings.TrimSpace(string(out)))
	}
	return nil
}

var _ failover.Engine = (*Engine)(nil)
