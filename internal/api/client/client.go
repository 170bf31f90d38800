// Package client is a small Go client of firebreak's HTTP API, for the CLI
// (firebreak status, drain, undrain, override) and for anything else that
// talks to a node: load balancers following routing, scripts.
//
// Where to connect and with which token comes from, in order: explicit
// values (command-line flags), the environment (FIREBREAK_SERVER,
// FIREBREAK_TOKEN, FIREBREAK_TOKEN_FILE), then a config file
// (FIREBREAK_CLIENT_CONFIG, default ~/.config/firebreak/client.yaml):
//
//	server: http://10.0.1.5:7480
//	tokenFile: ~/.config/firebreak/token   # or token: <secret>
//	timeout: 10s
//
//	cfg, err := client.LoadConfig(client.Config{Server: serverFlag, Token: tokenFlag}, "")
//	c, err := client.New(cfg)
//	o, err := c.Drain(ctx, "pangyo", "battery room fire", 4*time.Hour)
//
// Any node answers: reads come from that node's state (Stale says so when
// it has lost its store quorum) and changes are forwarded to the leader.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/yamlnode"
)

// Environment variables read by LoadConfig.
const (
	EnvServer    = "FIREBREAK_SERVER"
	EnvToken     = "FIREBREAK_TOKEN"
	EnvTokenFile = "FIREBREAK_TOKEN_FILE"
	EnvConfig    = "FIREBREAK_CLIENT_CONFIG"
)

// DefaultServer is used when no server is configured anywhere.
const DefaultServer = "http://127.0.0.1:7480"

// Config says how to reach a node.
type Config struct {
	// Server is the node's API base URL (default DefaultServer). A bare
	// host:port gets http://.
	Server string
	// Token is the bearer token (empty: anonymous, which most nodes refuse
	// for everything but the public status page).
	Token string
	// TokenFile is read for the token when Token is empty.
	TokenFile string
	// Timeout bounds each call (default 10s; event streams have none).
	Timeout time.Duration
	// HTTP is the client to use (default: a new one).
	HTTP *http.Client
}

// DefaultConfigPath is ~/.config/firebreak/client.yaml (or "" without a
// home directory).
func DefaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "firebreak", "client.yaml")
}

// LoadConfig fills the empty fields of explicit from the environment, then
// from the config file at path (default: $FIREBREAK_CLIENT_CONFIG or
// DefaultConfigPath; a missing default file is not an error), then
// applies defaults, and reads the token file.
func LoadConfig(explicit Config, path string) (Config, error) {
	c := explicit
	if c.Server == "" {
		c.Server = os.Getenv(EnvServer)
	}
	if c.Token == "" && c.TokenFile == "" {
		c.Token = os.Getenv(EnvToken)
		if c.Token == "" {
			c.TokenFile = os.Getenv(EnvTokenFile)
		}
	}
	mustExist := path != ""
	if path == "" {
		path = os.Getenv(EnvConfig)
		mustExist = path != ""
	}
	if path == "" {
		path = DefaultConfigPath()
	}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			fc, err := parseFile(path, b)
			if err != nil {
				return c, err
			}
			if c.Server == "" {
				c.Server = fc.Server
			}
			if c.Token == "" && c.TokenFile == "" {
				c.Token, c.TokenFile = fc.Token, fc.TokenFile
			}
			if c.Timeout == 0 {
				c.Timeout = fc.Timeout
			}
		case mustExist || !errors.Is(err, os.ErrNotExist):
			return c, fmt.Errorf("client config: %w", err)
		}
	}
	if c.Server == "" {
		c.Server = DefaultServer
	}
	if c.Token == "" && c.TokenFile != "" {
		tf := expandHome(c.TokenFile)
		b, err := os.ReadFile(tf)
		if err != nil {
			return c, fmt.Errorf("token file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	return c, nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, rest)
		}
	}
	return p
}

func parseFile(file string, b []byte) (Config, error) {
	var c Config
	d := yamlnode.NewDecoder(file)
	root := d.Parse(b)
	if root != nil {
		d.Mapping(root, "client config", map[string]yamlnode.Field{
			"server":    func(_, v *yaml.Node) { c.Server = d.String(v, "server") },
			"token":     func(_, v *yaml.Node) { c.Token = d.String(v, "token") },
			"tokenFile": func(_, v *yaml.Node) { c.TokenFile = d.String(v, "tokenFile") },
			"timeout":   func(_, v *yaml.Node) { c.Timeout = d.Duration(v, "timeout") },
		})
	}
	return c, d.Errs.Err()
}

// Client calls one node's API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	to    time.Duration
}

// New returns a client for cfg (run LoadConfig first to apply the
// environment and defaults).
func New(cfg Config) (*Client, error) {
	s := cfg.Server
	if s == "" {
		s = DefaultServer
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("server %q: expected a URL such as http://10.0.1.5:7480", cfg.Server)
	}
	c := &Client{base: u, token: cfg.Token, http: cfg.HTTP, to: cfg.Timeout}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.to <= 0 {
		c.to = 10 * time.Second
	}
	return c, nil
}

// Error is an answer with a status code of 400 or more.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("unauthorized (401): %s; pass --token or set %s", e.Message, EnvToken)
	case http.StatusForbidden:
		return fmt.Sprintf("forbidden (403): %s", e.Message)
	}
	return fmt.Sprintf("%s (%d)", e.Message, e.Status)
}

// StatusCode returns the HTTP status of err when it is an *Error, else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.to)
	defer cancel()
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, u.Redacted(), err)
	}
	return nil
}

// Snapshot returns everything the node knows (GET /api/v1/snapshot).
func (c *Client) Snapshot(ctx context.Context) (*view.Snapshot, error) {
	var s view.Snapshot
	if err := c.do(ctx, "GET", "/api/v1/snapshot", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Datastores returns the answering node's failover readiness of every
// datastore (GET /api/v1/datastores).
func (c *Client) Datastores(ctx context.Context) ([]view.DatastoreReadiness, error) {
	var r struct {
		Datastores []view.DatastoreReadiness `json:"datastores"`
	}
	if err := c.do(ctx, "GET", "/api/v1/datastores", nil, nil, &r); err != nil {
		return nil, err
	}
	return r.Datastores, nil
}

// Routing returns the routing table (GET /api/v1/routing).
func (c *Client) Routing(ctx context.Context) (*routing.Table, error) {
	var t routing.Table
	if err := c.do(ctx, "GET", "/api/v1/routing", nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Overrides lists active overrides (all: expired ones too).
func (c *Client) Overrides(ctx context.Context, all bool) ([]view.Override, error) {
	q := url.Values{}
	if all {
		q.Set("all", "true")
	}
	var r struct {
		Overrides []view.Override `json:"overrides"`
	}
	err := c.do(ctx, "GET", "/api/v1/overrides", q, nil, &r)
	return r.Overrides, err
}

func ttlString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// Drain takes every endpoint of site out of routing for ttl (0: the
// server's default, 4h). reason is required.
func (c *Client) Drain(ctx context.Context, site, reason string, ttl time.Duration) (view.Override, error) {
	var r struct {
		Override view.Override `json:"override"`
	}
	err := c.do(ctx, "POST", "/api/v1/sites/"+url.PathEscape(site)+"/drain", nil,
		map[string]string{"reason": reason, "ttl": ttlString(ttl)}, &r)
	return r.Override, err
}

// Undrain ends every active drain of site.
func (c *Client) Undrain(ctx context.Context, site, reason string) ([]view.Override, error) {
	var r struct {
		Expired []view.Override `json:"expired"`
	}
	err := c.do(ctx, "POST", "/api/v1/sites/"+url.PathEscape(site)+"/undrain", nil, map[string]string{"reason": reason}, &r)
	return r.Expired, err
}

// SetOverride creates an override: kind is drain, force-up, force-down or
// freeze; target a site, an endpoint ID or a service ("" freezes all).
func (c *Client) SetOverride(ctx context.Context, kind, target, reason string, ttl time.Duration) (view.Override, error) {
	var r struct {
		Override view.Override `json:"override"`
	}
	err := c.do(ctx, "POST", "/api/v1/overrides", nil,
		map[string]string{"kind": kind, "target": target, "reason": reason, "ttl": ttlString(ttl)}, &r)
	return r.Override, err
}

// ExpireOverride ends override id now.
func (c *Client) ExpireOverride(ctx context.Context, id, reason string) (view.Override, error) {
	var r struct {
		Override view.Override `json:"override"`
	}
	err := c.do(ctx, "POST", "/api/v1/overrides/"+url.PathEscape(id)+"/expire", nil, map[string]string{"reason": reason}, &r)
	return r.Override, err
}

// History returns history events since (zero: the last 24h), newest
// first; kind filters (endpoint, site, route, alarm; "" for all); limit
// 0 is the server's default (1000).
func (c *Client) History(ctx context.Context, since time.Time, kind string, limit int) ([]decide.Event, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var r struct {
		History []decide.Event `json:"history"`
	}
	err := c.do(ctx, "GET", "/api/v1/history", q, nil, &r)
	return r.History, err
}

// Audit returns audit records since (zero: 30 days), oldest first (admin).
func (c *Client) Audit(ctx context.Context, since time.Time, limit int) ([]view.AuditRecord, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var r struct {
		Audit []view.AuditRecord `json:"audit"`
	}
	err := c.do(ctx, "GET", "/api/v1/audit", q, nil, &r)
	return r.Audit, err
}

// Event is one server-sent event.
type Event struct {
	// Name is hello, routing, verdict, observation, override, history,
	// node, leader, topology or store.
	Name string
	ID   string
	// Data is the event's JSON: a routing.Route for "routing", a
	// view.Event for the others, the node's state for "hello".
	Data json.RawMessage
}

// Route decodes a "routing" event's route.
func (e Event) Route() (*routing.Route, error) {
	var r routing.Route
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Watch follows the event stream, calling fn for every event, until ctx
// ends, the stream breaks, or fn returns an error. kinds selects event
// kinds (none: all); with "routing" the current routes come first.
// Watch does not reconnect: call it again (any node will do).
func (c *Client) Watch(ctx context.Context, kinds []string, fn func(Event) error) error {
	u := *c.base
	u.Path += "/api/v1/events"
	if len(kinds) > 0 {
		u.RawQuery = url.Values{"kinds": {strings.Join(kinds, ",")}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("watch %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var ev Event
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" || len(data) > 0 {
				ev.Data = json.RawMessage(data)
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			ev.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return errors.New("watch: the server closed the stream")
}
