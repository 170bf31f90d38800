package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBinDir returns the directory holding initdb, postgres and pg_basebackup:
// the newest /usr/lib/postgresql/<ver>/bin, or the directory of initdb on
// PATH. It wraps ErrNoBinaries when none is found.
func PGBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVer(dirs[i]) > pgVer(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("postgresql: %w (apt-get install postgresql)", ErrNoBinaries)
}

func pgVer(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// PGReplicaSpec describes one streaming replica to create.
type PGReplicaSpec struct {
	// Name is the replica's cluster_name, also its application_name in
	// pg_stat_replication.
	Name string
	// Sync puts the replica in synchronous_standby_names.
	Sync bool
	// Host is its listen address (default: a random one from HostBlock).
	Host string
}

// PGOptions configures StartPG.
type PGOptions struct {
	// HostBlock is the 127.0.<lo>-<hi>.x block addresses are drawn from
	// (default 60-69).
	HostBlock [2]int
	// Host is the primary's listen address (default: random from HostBlock).
	Host     string
	Replicas []PGReplicaSpec
}

// PGCluster is a primary and its streaming replicas, each in its own data
// directory under Dir.
type PGCluster struct {
	Dir      string
	Bin      string
	Primary  *PGServer
	Replicas []*PGServer
	cred     *syscall.Credential
}

// PGServer is one PostgreSQL server of a cluster.
type PGServer struct {
	Name    string
	Host    string
	Port    int
	DataDir string
	// Args are the extra -c settings the server is started with.
	Args []string
	c    *PGCluster
	p    proc
}

// StartPG creates a primary with initdb and each replica with
// pg_basebackup, starts them and waits until every replica streams.
// On error, everything started is stopped and removed.
func StartPG(ctx context.Context, o PGOptions) (_ *PGCluster, err error) {
	bin, err := PGBinDir()
	if err != nil {
		return nil, err
	}
	if o.HostBlock == [2]int{} {
		o.HostBlock = [2]int{60, 69}
	}
	dir, err := os.MkdirTemp("", "firebreak-pg-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	c := &PGCluster{Dir: dir, Bin: bin}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if isRoot() {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	host := o.Host
	if host == "" {
		host = Host(o.HostBlock[0], o.HostBlock[1])
	}
	var syncNames []string
	for _, r := range o.Replicas {
		if r.Sync {
			syncNames = append(syncNames, r.Name)
		}
	}
	prim, err := c.newServer("primary", host)
	if err != nil {
		return nil, err
	}
	if len(syncNames) > 0 {
		prim.Args = append(prim.Args, "synchronous_standby_names="+strings.Join(syncNames, ","))
	}
	c.Primary = prim
	if out, err := c.run(ctx, "initdb", "-D", prim.DataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	conf := `
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
hot_standby = on
wal_log_hints = on
fsync = off
shared_buffers = 16MB
max_connections = 40
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 200ms
`
	if err := appendFile(filepath.Join(prim.DataDir, "postgresql.conf"), conf); err != nil {
		return nil, err
	}
	hba := "host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n"
	if err := appendFile(filepath.Join(prim.DataDir, "pg_hba.conf"), hba); err != nil {
		return nil, err
	}
	if err := prim.Start(ctx); err != nil {
		return nil, err
	}
	for _, r := range o.Replicas {
		h := r.Host
		if h == "" {
			h = Host(o.HostBlock[0], o.HostBlock[1])
		}
		s, err := c.newServer(r.Name, h)
		if err != nil {
			return nil, err
		}
		if out, err := c.run(ctx, "pg_basebackup", "-h", prim.Host, "-p", itoa(prim.Port), "-U", "postgres",
			"-D", s.DataDir, "-X", "stream", "-R", "--no-sync", "-c", "fast"); err != nil {
			return nil, fmt.Errorf("pg_basebackup %s: %w: %s", r.Name, err, out)
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		c.Replicas = append(c.Replicas, s)
	}
	// Wait until every replica streams from the primary.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := prim.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
		if err == nil && int(n) == len(o.Replicas) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replicas not streaming after 30s (%d of %d, err %v)", n, len(o.Replicas), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

func (c *PGCluster) newServer(name, host string) (*PGServer, error) {
	port, err := FreePort(host)
	if err != nil {
		return nil, err
	}
	return &PGServer{
		Name:    name,
		Host:    host,
		Port:    port,
		DataDir: filepath.Join(c.Dir, name),
		c:       c,
	}, nil
}

// run runs a PostgreSQL binary as the cluster's user and returns its output.
func (c *PGCluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, name), args...)
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd.CombinedOutput()
}

// Run runs a PostgreSQL binary (pg_rewind, pg_ctl, ...) from the cluster's
// bin directory as the cluster's user.
func (c *PGCluster) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return c.run(ctx, name, args...)
}

// Close kills every server and removes the directory. It is idempotent.
func (c *PGCluster) Close() {
	if c.Primary != nil {
		c.Primary.Kill()
	}
	for _, r := range c.Replicas {
		r.Kill()
	}
	if c.Dir != "" {
		_ = os.RemoveAll(c.Dir)
	}
}

// Addr returns host:port.
func (s *PGServer) Addr() string { return s.Host + ":" + itoa(s.Port) }

// DSN returns a connection string for the postgres superuser.
func (s *PGServer) DSN() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=2", s.Host, s.Port)
}

// Start starts the server and waits until it accepts connections.
func (s *PGServer) Start(ctx context.Context) error {
	args := []string{"-D", s.DataDir,
		"-c", "listen_addresses=" + s.Host,
		"-c", "port=" + itoa(s.Port),
		"-c", "unix_socket_directories=",
		"-c", "cluster_name=" + s.Name,
	}
	for _, a := range s.Args {
		args = append(args, "-c", a)
	}
	logf, err := os.OpenFile(filepath.Join(s.c.Dir, s.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.c.Bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.c.cred}
	if err := s.p.start(cmd); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if !s.p.running() {
			return fmt.Errorf("postgres %s exited at start: %s", s.Name, s.Log())
		}
		_, err := s.QueryInt(ctx, "SELECT 1")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Kill()
			return fmt.Errorf("postgres %s not ready: %w", s.Name, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// Kill SIGKILLs the server's whole process group: a power loss.
func (s *PGServer) Kill() { s.p.signal(syscall.SIGKILL) }

// Stop shuts the server down cleanly (fast shutdown).
func (s *PGServer) Stop() { s.p.signal(syscall.SIGINT) }

// Running reports whether the postmaster is alive.
func (s *PGServer) Running() bool { return s.p.running() }

// Pid returns the postmaster's pid, or 0.
func (s *PGServer) Pid() int { return s.p.pid() }

// Log returns the server's log so far (for failure messages).
func (s *PGServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.c.Dir, s.Name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Conn opens a connection to the server.
func (s *PGServer) Conn(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return pgx.Connect(ctx, s.DSN())
}

// Exec runs one statement on a fresh connection.
func (s *PGServer) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := s.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// QueryInt runs a query returning one integer, on a fresh connection.
func (s *PGServer) QueryInt(ctx context.Context, sql string, args ...any) (int64, error) {
	conn, err := s.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// Rewind turns s, a stopped former primary, into a streaming replica of
// src with pg_rewind, then starts it: the resync firebreak's runbook does
// before an old primary is re-admitted.
func (s *PGServer) Rewind(ctx context.Context, src *PGServer) error {
	if s.Running() {
		s.Stop()
	}
	// A promoted server's control file names the new timeline only after
	// its first checkpoint; without one pg_rewind sees no divergence.
	if err := src.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint on %s: %w", src.Name, err)
	}
	conn := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", src.Host, src.Port)
	if out, err := s.c.run(ctx, "pg_rewind", "-D", s.DataDir, "--source-server="+conn, "--no-sync"); err != nil {
		return fmt.Errorf("pg_rewind: %w: %s", err, out)
	}
	auto := fmt.Sprintf("\nprimary_conninfo = 'host=%s port=%d user=postgres'\n", src.Host, src.Port)
	if err := appendFile(filepath.Join(s.DataDir, "postgresql.auto.conf"), auto); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.DataDir, "standby.signal"), "", s.c.cred); err != nil {
		return err
	}
	return s.Start(ctx)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	return f.Close()
}

func writeFile(path, text string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	if cred != nil {
		return os.Chown(path, int(cred.Uid), int(cred.Gid))
	}
	return nil
}
