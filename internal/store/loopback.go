package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// StartLoopback starts a private single-member store for a tool or a test:
// cfg's ClientURL and PeerURL are set to free ports on host (a loopback
// address), and it returns once the member serves (or after 30 s, or when
// ctx ends, with the member stopped). cfg.Name and cfg.Dir are required as
// for StartMember.
func StartLoopback(ctx context.Context, cfg MemberConfig, host string) (*Member, error) {
	cport, err := freePort(host)
	if err != nil {
		return nil, err
	}
	pport, err := freePort(host)
	if err != nil {
		return nil, err
	}
	cfg.ClientURL = fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(cport)))
	cfg.PeerURL = fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(pport)))
	m, err := StartMember(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-m.Ready():
		return m, nil
	case <-time.After(30 * time.Second):
		m.Close()
		return nil, errors.New("embedded store did not become ready in 30s")
	case <-ctx.Done():
		m.Close()
		return nil, ctx.Err()
	}
}

// freePort returns a TCP port free on host at the time of the call.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
