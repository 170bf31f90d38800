// Package ui serves firebreak's operator dashboard and public status page:
// server-rendered html/template pages with their assets embedded (embed.FS;
// no CDN, works offline), live updates over the API's server-sent events.
//
// The dashboard shows the site map, per-service routing and endpoints, the
// who-sees-what matrix, active overrides with their expiry, the recent
// history as a timeline, leader and store health, and a "stale since"
// banner when the node has lost its store quorum; drain and undrain buttons
// call the API with the signed-in operator's token. A Runbooks panel
// (assets/app.js, from /api/v1/runs) shows each run's per-step progress,
// ETA and failures, with pause, resume and abort.
//
// The status page needs no sign-in: per public service, the current state,
// incidents derived from the verdict history, and 90 days of uptime bars;
// with an Atom feed (/status/feed.atom) and a JSON summary in the spirit of
// common status-page formats (/status/summary.json). Every node serves it,
// from its own copy of the state, so it survives the loss of any site.
//
// Mount the handler at "/" (api.Config.UI does).
package ui

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options configure the UI. Zero values take the documented defaults.
type Options struct {
	// Auth identifies dashboard users (nil: nobody can sign in, and the
	// dashboard is not shown). The status page needs no sign-in.
	Auth *auth.Authenticator
	// Title is the dashboard's title (default "firebreak").
	Title string
	// StatusTitle is the public status page's title (default: the
	// topology's name followed by "status", or "Service status").
	StatusTitle string
	// Days is the length of the uptime bars (default 90).
	Days int
	// CacheFor is how long the status page's history-derived data is
	// reused (default 5s).
	CacheFor time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Readiness, when set, supplies the dashboard's Datastores panel
	// (failover readiness of every datastore).
	Readiness func() []view.DatastoreReadiness
}

// UI is the dashboard and status page handler.
type UI struct {
	opt   Options
	state view.State
	log   *slog.Logger
	tmpl  *template.Template
	mux   *http.ServeMux

	mu     sync.Mutex
	cached *statusModel
}

// New returns the UI over state.
func New(state view.State, opt Options, logger *slog.Logger) (*UI, error) {
	if opt.Title == "" {
		opt.Title = "firebreak"
	}
	if opt.Days <= 0 {
		opt.Days = 90
	}
	if opt.CacheFor <= 0 {
		opt.CacheFor = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u := &UI{opt: opt, state: state, log: logger.With("component", "ui"), mux: http.NewServeMux()}
	t, err := template.New("").Funcs(u.funcs()).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui templates: %w", err)
	}
	u.tmpl = t
	assets, _ := fs.Sub(assetFS, "assets")
	u.mux.Handle("GET /assets/", http.StripPrefix("/assets/", cacheAssets(http.FileServerFS(assets))))
	u.mux.HandleFunc("GET /{$}", u.dashboard)
	u.mux.HandleFunc("GET /dashboard/live", u.dashboardLive)
	u.mux.HandleFunc("GET /login", u.loginForm)
	u.mux.HandleFunc("POST /login", u.login)
	u.mux.HandleFunc("POST /logout", u.logout)
	u.mux.HandleFunc("GET /status", u.status)
	u.mux.HandleFunc("GET /status/live", u.statusLive)
	u.mux.HandleFunc("GET /status/feed.atom", u.feed)
	u.mux.HandleFunc("GET /status/summary.json", u.summary)
	return u, nil
}

// ServeHTTP implements http.Handler.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Frame-Options", "DENY")
	u.mux.ServeHTTP(w, r)
}

func cacheAssets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

func (u *UI) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := u.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		u.log.Error("render", "template", name, "err", err)
		http.Error(w, "render error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// dashModel is what the dashboard templates get.
type dashModel struct {
	Title    string
	Snap     *view.Snapshot
	User     auth.Identity
	SignedIn bool
	CanWrite bool
	Now      time.Time
	// Matrix is the who-sees-what grid.
	Matrix matrix
	// Counts for the header.
	SitesDown, ServicesDown, ServicesDegraded, ActiveOverrides int
	// Datastores is the failover readiness panel (nil: no panel).
	Datastores []view.DatastoreReadiness
}

type matrix struct {
	Observers []view.Observer
	Rows      []matrixRow
}

type matrixRow struct {
	Service string
	First   bool // first row of its service
	Span    int
	EP      view.Endpoint
	Cells   []matrixCell
}

type matrixCell struct {
	// State is up, down or none (the observer is not assigned / has no opinion).
	State  string
	Detail string
	Since  time.Time
}

func (u *UI) identify(r *http.Request) (auth.Identity, error) {
	if u.opt.Auth == nil {
		return auth.Identity{Name: "anonymous"}, nil
	}
	return u.opt.Auth.Identify(r)
}

func (u *UI) dashModel(ctx context.Context, id auth.Identity) (*dashModel, error) {
	snap, err := u.state.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	m := &dashModel{Title: u.opt.Title, Snap: snap, User: id, SignedIn: id.Name != "anonymous" && id.Name != "", CanWrite: id.Role >= auth.Operator, Now: u.opt.Now()}
	for _, s := range snap.Sites {
		if s.State == decide.Down {
			m.SitesDown++
		}
	}
	for _, s := range snap.Services {
		switch s.State {
		case view.StateDown:
			m.ServicesDown++
		case view.StateDegraded:
			m.ServicesDegraded++
		}
	}
	for _, o := range snap.Overrides {
		if o.Active {
			m.ActiveOverrides++
		}
	}
	if u.opt.Readiness != nil {
		m.Datastores = u.opt.Readiness()
	}
	m.Matrix.Observers = snap.Observers
	for _, sv := range snap.Services {
		for i, ep := range sv.Endpoints {
			row := matrixRow{Service: sv.Name, First: i == 0, Span: len(sv.Endpoints), EP: ep}
			byObs := map[string]view.Opinion{}
			for _, o := range ep.Opinions {
				byObs[o.Observer] = o
			}
			for _, o := range snap.Observers {
				c := matrixCell{State: "none"}
				if op, ok := byObs[o.Name]; ok {
					c.State, c.Detail, c.Since = decide.Down, op.Detail, op.Since
					if op.Up {
						c.State = decide.Up
					}
				}
				row.Cells = append(row.Cells, c)
			}
			m.Matrix.Rows = append(m.Matrix.Rows, row)
		}
	}
	return m, nil
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request) {
	id, err := u.identify(r)
	if err != nil || id.Role < auth.Viewer || u.opt.Auth == nil {
		if err != nil {
			auth.ClearCookie(w)
		}
		http.Redirect(w, r, "/login?next=/", http.StatusSeeOther)
		return
	}
	m, err := u.dashModel(r.Context(), id)
	if err != nil {
		http.Error(w, "no state yet: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	u.render(w, "dashboard.html", m)
}

func (u *UI) dashboardLive(w http.ResponseWriter, r *http.Request) {
	id, err := u.identify(r)
	if err != nil || id.Role < auth.Viewer || u.opt.Auth == nil {
		http.Error(w, "sign in", http.StatusUnauthorized)
		return
	}
	m, err := u.dashModel(r.Context(), id)
	if err != nil {
		http.Error(w, "no state yet: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	u.render(w, "live", m)
}

type loginModel struct {
	Title, Error, Next string
	Anonymous          bool
}

func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	if _, err := url.Parse(next); err != nil {
		return "/"
	}
	return next
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	u.render(w, "login.html", loginModel{Title: u.opt.Title, Next: safeNext(r.URL.Query().Get("next")),
		Anonymous: u.opt.Auth != nil && u.opt.Auth.Anonymous >= auth.Viewer})
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	next := safeNext(r.PostForm.Get("next"))
	var id auth.Identity
	ok := false
	if u.opt.Auth != nil {
		id, ok = u.opt.Auth.Check(token)
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		u.render(w, "login.html", loginModel{Title: u.opt.Title, Next: next, Error: "That token is not valid on this node."})
		return
	}
	u.log.Info("signed in", "who", id.Name, "role", id.Role.String(), "remote", r.RemoteAddr)
	auth.SetCookie(w, r, token)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	auth.ClearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
