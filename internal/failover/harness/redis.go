package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// HostBlock is the 127.0.<lo>-<hi>.x block addresses are drawn from
	// (default 60-69).
	HostBlock [2]int
	// Replicas is how many replicas of the primary to start.
	Replicas int
}

// RedisPair is a Redis primary and its replicas, each with an append-only
// file under Dir so that a killed server comes back with its data.
type RedisPair struct {
	Dir      string
	Primary  *RedisServer
	Replicas []*RedisServer
}

// RedisServer is one redis-server process.
type RedisServer struct {
	Name string
	Host string
	Port int
	Dir  string
	// ReplicaOf is host:port given with --replicaof at start ("" = none).
	ReplicaOf string
	p         proc
}

// StartRedis starts a primary and its replicas and waits until every
// replica's link is up. On error everything started is stopped and removed.
func StartRedis(ctx context.Context, o RedisOptions) (_ *RedisPair, err error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server: %w (apt-get install redis-server)", ErrNoBinaries)
	}
	if o.HostBlock == [2]int{} {
		o.HostBlock = [2]int{60, 69}
	}
	dir, err := os.MkdirTemp("", "firebreak-redis-")
	if err != nil {
		return nil, err
	}
	rp := &RedisPair{Dir: dir}
	defer func() {
		if err != nil {
			rp.Close()
		}
	}()
	mk := func(name, replicaOf string) (*RedisServer, error) {
		h := Host(o.HostBlock[0], o.HostBlock[1])
		port, err := FreePort(h)
		if err != nil {
			return nil, err
		}
		s := &RedisServer{Name: name, Host: h, Port: port, Dir: filepath.Join(dir, name), ReplicaOf: replicaOf}
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, err
		}
		return s, s.Start(ctx)
	}
	if rp.Primary, err = mk("primary", ""); err != nil {
		return nil, err
	}
	for i := 0; i < o.Replicas; i++ {
		r, err := mk(fmt.Sprintf("replica%d", i+1), rp.Primary.Addr())
		if r != nil {
			rp.Replicas = append(rp.Replicas, r)
		}
		if err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range rp.Replicas {
		for {
			info, err := r.Client().Info(ctx, "replication").Result()
			if err == nil && strings.Contains(info, "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("redis %s: replication link not up after 20s", r.Name)
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	return rp, nil
}

// Close kills every server and removes the directory. It is idempotent.
func (rp *RedisPair) Close() {
	if rp.Primary != nil {
		rp.Primary.Kill()
	}
	for _, r := range rp.Replicas {
		r.Kill()
	}
	_ = os.RemoveAll(rp.Dir)
}

// Addr returns host:port.
func (s *RedisServer) Addr() string { return s.Host + ":" + itoa(s.Port) }

// Client returns a new client for the server; the caller closes it.
func (s *RedisServer) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
}

// Start starts the server (again) with its data directory and waits until
// it answers PING.
func (s *RedisServer) Start(ctx context.Context) error {
	args := []string{
		"--bind", s.Host, "--port", itoa(s.Port), "--dir", s.Dir,
		"--save", "", "--appendonly", "yes", "--protected-mode", "no",
		"--daemonize", "no", "--logfile", filepath.Join(s.Dir, "redis.log"),
	}
	if s.ReplicaOf != "" {
		h, p, _ := net.SplitHostPort(s.ReplicaOf)
		args = append(args, "--replicaof", h, p)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if err := s.p.start(cmd); err != nil {
		return err
	}
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if !s.p.running() {
			b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("redis %s exited at start: %s", s.Name, b)
		}
		if err := c.Ping(ctx).Err(); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Kill()
			return fmt.Errorf("redis %s not ready after 20s", s.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill SIGKILLs the server: a power loss.
func (s *RedisServer) Kill() { s.p.signal(syscall.SIGKILL) }

// Pause stops (SIGSTOP) or resumes (SIGCONT) the server, to make it lag.
func (s *RedisServer) Pause(stop bool) {
	if pid := s.p.pid(); pid != 0 {
		sig := syscall.SIGCONT
		if stop {
			sig = syscall.SIGSTOP
		}
		_ = syscall.Kill(pid, sig)
	}
}

// Running reports whether the server process is alive.
func (s *RedisServer) Running() bool { return s.p.running() }
