package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// ErrForeignDataDir is returned when a data directory was created for
// another member name or another cluster token.
var ErrForeignDataDir = errors.New("data dir belongs to another member or cluster")

// Defaults for MemberConfig.
const (
	DefaultToken        = "firebreak"
	DefaultClientURL    = "http://127.0.0.1:2379"
	DefaultPeerURL      = "http://127.0.0.1:2380"
	DefaultTickMs       = 100
	DefaultElectionMs   = 1000
	DefaultEtcdLogLevel = "error"
	markerFile          = "firebreak-member.json"
)

// MemberConfig configures one embedded etcd member. Every field documents its
// default; defaults are applied by StartMember.
type MemberConfig struct {
	// Name is the member name, normally the firebreak node name (required).
	Name string
	// Dir is the data directory (required). It is created 0700; an existing
	// directory with looser permissions is tightened to 0700.
	Dir string
	// ClientURL is where the member serves clients (default
	// DefaultClientURL). It is both listened on and advertised, so it must
	// name an address of this host (not 0.0.0.0). https:// needs ClientTLS.
	ClientURL string
	// PeerURL is where the member talks to other members (default
	// DefaultPeerURL); listened on and advertised. https:// needs PeerTLS.
	PeerURL string
	// InitialCluster lists every member of a new cluster as
	// "name=peerURL,name=peerURL" (default: this member alone). It is only
	// read when the data dir is empty.
	InitialCluster string
	// ClusterState is "new" (default) to bootstrap a cluster with
	// InitialCluster, or "existing" to join a running cluster to which this
	// member was already added (etcdctl member add / firebreak cluster add).
	ClusterState string
	// Token is the initial cluster token (default DefaultToken). Distinct
	// clusters must use distinct tokens; the data dir remembers it.
	Token string
	// ClientTLS and PeerTLS are the listening sides' certificates; with a
	// CAFile, connecting clients or peers must present a certificate signed
	// by it (default: plain TCP).
	ClientTLS, PeerTLS TLSFiles
	// TickMs and ElectionMs are raft's heartbeat interval and election
	// timeout (default 100 and 1000). Tests lower them to speed up elections.
	TickMs, ElectionMs uint
	// LogLevel is etcd's own zap log level (default "error").
	LogLevel string
	// Adopt accepts a data dir that holds an etcd member but no firebreak
	// marker (a dir restored with "etcdutl snapshot restore", or one made
	// by plain etcd) and marks it as this member's (default false: such a
	// dir is refused with ErrForeignDataDir).
	Adopt bool
}

func (c *MemberConfig) defaults() {
	if c.ClientURL == "" {
		c.ClientURL = DefaultClientURL
	}
	if c.PeerURL == "" {
		c.PeerURL = DefaultPeerURL
	}
	if c.InitialCluster == "" {
		c.InitialCluster = c.Name + "=" + c.PeerURL
	}
	if c.ClusterState == "" {
		c.ClusterState = embed.ClusterStateFlagNew
	}
	if c.Token == "" {
		c.Token = DefaultToken
	}
	if c.TickMs == 0 {
		c.TickMs = DefaultTickMs
	}
	if c.ElectionMs == 0 {
		c.ElectionMs = DefaultElectionMs
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultEtcdLogLevel
	}
}

// Member is a running embedded etcd member.
type Member struct {
	e         *embed.Etcd
	cfg       MemberConfig
	closeOnce sync.Once
}

// memberMarker is written into the data dir so a later start can refuse a
// dir that belongs to another member or cluster.
type memberMarker struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

// StartMember validates cfg, prepares the data dir and starts the member. It
// returns once the member listens; it does not wait for the cluster to have
// quorum (see Ready). A failed start leaves nothing running.
func StartMember(cfg MemberConfig) (m *Member, err error) {
	cfg.defaults()
	if cfg.Name == "" {
		return nil, errors.New("embedded store: member name is empty")
	}
	if cfg.Dir == "" {
		return nil, errors.New("embedded store: data dir is empty")
	}
	curl, err := parseURL("client URL", cfg.ClientURL, cfg.ClientTLS)
	if err != nil {
		return nil, err
	}
	purl, err := parseURL("peer URL", cfg.PeerURL, cfg.PeerTLS)
	if err != nil {
		return nil, err
	}
	if err := cfg.ClientTLS.Check("client TLS"); err != nil {
		return nil, err
	}
	if err := cfg.PeerTLS.Check("peer TLS"); err != nil {
		return nil, err
	}
	if cfg.ClusterState != embed.ClusterStateFlagNew && cfg.ClusterState != embed.ClusterStateFlagExisting {
		return nil, fmt.Errorf("embedded store: cluster state %q: expected new or existing", cfg.ClusterState)
	}
	if !strings.Contains(","+cfg.InitialCluster, ","+cfg.Name+"=") {
		return nil, fmt.Errorf("embedded store: initial cluster %q does not name this member %q", cfg.InitialCluster, cfg.Name)
	}
	if err := prepareDir(cfg); err != nil {
		return nil, err
	}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{*curl}
	ec.AdvertiseClientUrls = []url.URL{*curl}
	ec.ListenPeerUrls = []url.URL{*purl}
	ec.AdvertisePeerUrls = []url.URL{*purl}
	ec.InitialCluster = cfg.InitialCluster
	ec.InitialClusterToken = cfg.Token
	ec.ClusterState = cfg.ClusterState
	ec.ClientTLSInfo = cfg.ClientTLS.info()
	ec.PeerTLSInfo = cfg.PeerTLS.info()
	ec.TickMs = cfg.TickMs
	ec.ElectionMs = cfg.ElectionMs
	ec.LogLevel = cfg.LogLevel
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(etcdLogger(cfg.LogLevel))
	// A restarted member must not trigger an election at once.
	ec.InitialElectionTickAdvance = false
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded store %s in %s: %w", cfg.Name, cfg.Dir, err)
	}
	return &Member{e: e, cfg: cfg}, nil
}

func parseURL(what, s string, t TLSFiles) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("embedded store: %s %q: expected http(s)://host:port", what, s)
	}
	if u.Scheme == "https" && (t.CertFile == "" || t.KeyFile == "") {
		return nil, fmt.Errorf("embedded store: %s %q is https but no certFile/keyFile is set", what, s)
	}
	if u.Scheme == "http" && t.CertFile != "" {
		return nil, fmt.Errorf("embedded store: %s %q is http but TLS files are set; use https://", what, s)
	}
	return u, nil
}

// prepareDir creates the data dir 0700 (tightening an existing one) and
// checks or writes the marker naming the member and cluster token.
func prepareDir(cfg MemberConfig) error {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("embedded store: create data dir: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("embedded store: data dir permissions: %w", err)
	}
	path := filepath.Join(cfg.Dir, markerFile)
	want := memberMarker{Name: cfg.Name, Token: cfg.Token}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var got memberMarker
		if err := json.Unmarshal(b, &got); err != nil {
			return fmt.Errorf("embedded store: %s: %w", path, err)
		}
		if got != want {
			return fmt.Errorf("embedded store: %w: %s was created for member %q of cluster token %q, not member %q of token %q; use another --data-dir or remove it to start afresh",
				ErrForeignDataDir, cfg.Dir, got.Name, got.Token, want.Name, want.Token)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(filepath.Join(cfg.Dir, "member")); err == nil && !cfg.Adopt {
			return fmt.Errorf("embedded store: %w: %s already holds an etcd member not created by firebreak; use another --data-dir, or --adopt-data-dir if it is a restored snapshot of this cluster", ErrForeignDataDir, cfg.Dir)
		}
		b, _ := json.Marshal(want)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("embedded store: write %s: %w", path, err)
		}
		return nil
	default:
		return fmt.Errorf("embedded store: %w", err)
	}
}

// Ready is closed once the member has joined the cluster (needs quorum).
func (m *Member) Ready() <-chan struct{} { return m.e.Server.ReadyNotify() }

// Err delivers a fatal error of the running member.
func (m *Member) Err() <-chan error { return m.e.Err() }

// ClientURL is the member's client URL.
func (m *Member) ClientURL() string { return m.cfg.ClientURL }

// PeerURL is the member's peer URL.
func (m *Member) PeerURL() string { return m.cfg.PeerURL }

// Config returns the configuration the member was started with, defaults
// applied.
func (m *Member) Config() MemberConfig { return m.cfg }

// ID is the member's raft ID.
func (m *Member) ID() uint64 { return uint64(m.e.Server.MemberID()) }

// IsRaftLeader reports whether this member is the raft leader now.
func (m *Member) IsRaftLeader() bool { return m.e.Server.Leader() == m.e.Server.MemberID() }

// Close stops the member; the data dir keeps its state. It is idempotent and
// bounded by etcd's own shutdown timeouts.
func (m *Member) Close() {
	m.closeOnce.Do(func() {
		m.e.Close()
		// Wait until the server has stopped so the data dir can be reused.
		select {
		case <-m.e.Server.StopNotify():
		case <-time.After(10 * time.Second):
		}
	})
}
