// Package harness starts real PostgreSQL and Redis servers, and an embedded
// etcd member, on loopback for firebreak's failover tests and benchmarks.
//
// Servers run in their own process group so that Kill takes a whole
// "site" down at once (postmaster and every backend, like a power loss).
// PostgreSQL refuses to run as root: when the caller is root, every
// PostgreSQL process runs as the "postgres" system user and the directories
// are owned by it.
//
// Nothing here is for production; it exists so tests exercise real servers.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ErrNoBinaries is returned when a server's binaries are not installed.
var ErrNoBinaries = errors.New("server binaries not installed")

// Host returns a random loopback address in 127.0.<lo..hi>.1-254. Tests of
// one package pass their own block so concurrently running packages never
// collide.
func Host(lo, hi int) string {
	return fmt.Sprintf("127.0.%d.%d", lo+rand.IntN(hi-lo+1), 1+rand.IntN(254))
}

// FreePort returns a TCP port that was free on host a moment ago.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is one server process running in its own process group.
type proc struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig to the whole process group and waits for the leader to
// exit. It is a no-op when nothing runs.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pid := cmd.Process.Pid
	select {
	case <-done:
	default:
		if sig == syscall.SIGKILL {
			// A power loss takes every process at once. PostgreSQL
			// backends call setsid(), so the process group is not enough:
			// freeze the leader (no new children), kill its descendants,
			// then the group.
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			for _, c := range descendants(pid) {
				_ = syscall.Kill(c, syscall.SIGKILL)
			}
		}
		_ = syscall.Kill(-pid, sig)
		<-done
	}
}

// descendants returns the pids of every live descendant of pid, read from
// /proc (Linux).
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// pid returns the leader's pid, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func itoa(n int) string { return strconv.Itoa(n) }

// isRoot reports whether the process runs as root.
func isRoot() bool { return os.Geteuid() == 0 }
