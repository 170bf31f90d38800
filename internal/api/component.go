package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/node"
)

// Component runs the API (and the UI, when set) on a node: add it to the
// components of `firebreak serve`. It builds the store-backed state from
// the node's client, the authenticator from a tokens file and the store,
// and serves until the node stops.
//
//	comp := &api.Component{TokensFile: "/etc/firebreak/tokens",
//		UI: func(st view.State, a *auth.Authenticator) (http.Handler, error) {
//			return ui.New(st, ui.Options{Auth: a}, logger)
//		}}
type Component struct {
	// Addr is where to listen (default: the api address of this node in
	// the topology).
	Addr string
	// Config is the server's config; Node and Auth are filled in.
	Config Config
	// TokensFile is a tokens file (optional; see package auth).
	TokensFile string
	// Anonymous lets callers without a token read (auth.Viewer) or not
	// (auth.None, the default).
	Anonymous auth.Role
	// NoStoreTokens turns off tokens kept in the store (TokensPrefix).
	NoStoreTokens bool
	// UI builds the dashboard and status page over the node's state
	// (ui.New); nil serves the API only. It is a function so that this
	// package does not import the UI.
	UI func(st view.State, a *auth.Authenticator) (http.Handler, error)
	// Runs builds the runbook runs handler (Config.Runs) over the node's
	// store client; nil serves no runs. It is a function so that this
	// package does not import the runbook runner.
	Runs func(cli *clientv3.Client) http.Handler

	mu    sync.Mutex
	state *Etcd
}

// Name implements node.Component.
func (c *Component) Name() string { return "api" }

// State returns the component's state once Run has started (nil before);
// other components (a demo) may read it.
func (c *Component) State() *Etcd {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Run implements node.Component.
func (c *Component) Run(ctx context.Context, n *node.Node) error {
	log := n.Logger()
	addr := c.Addr
	if addr == "" {
		if t, _ := n.Topology(); t != nil {
			if tn := t.Node(n.Name()); tn != nil {
				addr = tn.API
			}
		}
	}
	if addr == "" {
		return fmt.Errorf("api: node %s has no api address in the topology (nodes[].api)", n.Name())
	}
	authn := &auth.Authenticator{Anonymous: c.Anonymous}
	if c.TokensFile != "" {
		t, err := auth.LoadTokens(c.TokensFile)
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		authn.Tokens = t
	}
	st := NewEtcd(n.Client(), EtcdConfig{Node: n.Name()}, log)
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = st.Run(ctx)
	}()
	if !c.NoStoreTokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = FollowTokens(ctx, n.Client(), authn, log)
		}()
	}
	cfg := c.Config
	cfg.Node, cfg.Auth = n.Name(), authn
	if c.UI != nil {
		h, err := c.UI(st, authn)
		if err != nil {
			return fmt.Errorf("api: ui: %w", err)
		}
		cfg.UI = h
	}
	if c.Runs != nil && cfg.Runs == nil {
		cfg.Runs = c.Runs(n.Client())
	}
	srv, err := New(cfg, st, st, log)
	if err != nil {
		return err
	}
	if authn.Tokens.Len() == 0 && c.NoStoreTokens {
		log.Warn("api has no tokens: every change will be refused", "node", n.Name())
	}
	err = srv.Serve(ctx, addr)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

var _ node.Component = (*Component)(nil)
