package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSH runs a command on the target over SSH, authenticating with a private
// key and checking the server's host key against a known_hosts file. Its
// one operation, "run", takes:
//
//	command  the command, after ${...} expansion (required)
//
// Exit status 0 is success. The target's SSH field is host:port (port 22
// when absent).
type SSH struct {
	config *ssh.ClientConfig
	dialer net.Dialer
}

// SSHConfig configures the SSH driver.
type SSHConfig struct {
	// User is the login name (required).
	User string
	// KeyFile is a PEM private key file (required unless Signer is set).
	KeyFile string
	// Signer is a private key, instead of KeyFile.
	Signer ssh.Signer
	// KnownHostsFile is an OpenSSH known_hosts file (required): a host whose
	// key is not in it, or differs, is refused.
	KnownHostsFile string
	// DialTimeout bounds the TCP connect and handshake (default 10s).
	DialTimeout time.Duration
}

// NewSSH validates cfg and loads its key and known hosts.
func NewSSH(cfg SSHConfig) (*SSH, error) {
	if cfg.User == "" {
		return nil, errors.New("ssh driver: user is required")
	}
	signer := cfg.Signer
	if signer == nil {
		if cfg.KeyFile == "" {
			return nil, errors.New("ssh driver: key is required")
		}
		pem, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ssh driver: read key: %w", err)
		}
		signer, err = ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("ssh driver: parse key %s: %w", cfg.KeyFile, err)
		}
	}
	if cfg.KnownHostsFile == "" {
		return nil, errors.New("ssh driver: knownHosts is required (host keys are always checked)")
	}
	hostKeys, err := knownhosts.New(cfg.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("ssh driver: known hosts: %w", err)
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &SSH{
		config: &ssh.ClientConfig{
			User:            cfg.User,
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: hostKeys,
			Timeout:         timeout,
		},
		dialer: net.Dialer{Timeout: timeout},
	}, nil
}

// Ops lists SSH's operations.
func (*SSH) Ops() []string { return []string{"run"} }

// Do runs the command on the target.
func (s *SSH) Do(ctx context.Context, t Target, op string, p Params) error {
	if op != "run" {
		return unknownOp("ssh", op, s.Ops())
	}
	command := Expand(p["command"], t)
	if strings.TrimSpace(command) == "" {
		return Permanent(errors.New("ssh: parameter command is empty"))
	}
	addr := t.SSH
	if addr == "" {
		return Permanent(fmt.Errorf("ssh: target %s has no ssh address", t.Name))
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	conn, err := s.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ssh %s: %w", addr, err)
	}
	// Close the connection when ctx ends, to unblock the handshake or
	// the command.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, s.config)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ssh %s: %w", addr, ctx.Err())
		}
		var kerr *knownhosts.KeyError
		if errors.As(err, &kerr) || strings.Contains(err.Error(), "unable to authenticate") {
			return Permanent(fmt.Errorf("ssh %s: %w", addr, err))
		}
		return fmt.Errorf("ssh %s: %w", addr, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("ssh %s: session: %w", addr, err)
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	if err := sess.Run(command); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ssh %s: %s: %w", addr, command, ctx.Err())
		}
		return fmt.Errorf("ssh %s: %s: %w%s", addr, command, err, lastLine(stderr.String()))
	}
	return nil
}

var _ Driver = (*SSH)(nil)
