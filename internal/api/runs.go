package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
)

// RunsPrefix is where runbook runs are served (Config.Runs):
//
//	GET  /api/v1/runs                     [{"id", "state"}, ...]    viewer
//	GET  /api/v1/runs/{id}                the run's progress         viewer
//	POST /api/v1/runs/{id}/{control}      pause, resume or abort     operator, audited
const RunsPrefix = "/api/v1/runs/"

// runControlRequest is the optional body of a run control.
type runControlRequest struct {
	// Reason is recorded in the audit log.
	Reason string `json:"reason,omitempty"`
}

// auditor is implemented by actions that can record an audit entry on its
// own (Etcd does).
type auditor interface {
	RecordAudit(ctx context.Context, c view.Change, action, subject string, detail any) error
}

func (s *Server) runRoutes(m *http.ServeMux) {
	runs := func(w http.ResponseWriter, r *http.Request) bool {
		if s.cfg.Runs == nil {
			s.fail(w, r, http.StatusNotFound, fmt.Errorf("this node serves no runbook runs: %w", view.ErrNotFound))
			return false
		}
		return true
	}
	list := s.require(auth.Viewer, func(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
		if !runs(w, r) {
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = RunsPrefix
		s.cfg.Runs.ServeHTTP(w, r2)
	})
	m.Handle("GET /api/v1/runs", list)
	m.Handle("GET /api/v1/runs/{$}", list)
	m.Handle("GET /api/v1/runs/{id}", s.require(auth.Viewer, func(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
		if runs(w, r) {
			s.cfg.Runs.ServeHTTP(w, r)
		}
	}))
	m.Handle("POST /api/v1/runs/{id}/{control}", s.mutate("run.control", func(w http.ResponseWriter, r *http.Request, c view.Change, body []byte) {
		if !runs(w, r) {
			return
		}
		control := r.PathValue("control")
		if control != "pause" && control != "resume" && control != "abort" {
			s.actionError(w, r, fmt.Errorf("%w: control %q: expected pause, resume or abort", view.ErrInvalid, control))
			return
		}
		var req runControlRequest
		if strings.TrimSpace(string(body)) != "" {
			if err := decodeBody(body, &req); err != nil {
				s.actionError(w, r, err)
				return
			}
		}
		c.Why = req.Reason
		id := r.PathValue("id")
		if a, ok := s.actions.(auditor); ok {
			if err := a.RecordAudit(r.Context(), c, "run."+control, id, nil); err != nil {
				s.actionError(w, r, err)
				return
			}
		}
		s.log.Info("run control", "run", id, "control", control, "who", c.Who, "reason", c.Why)
		s.cfg.Runs.ServeHTTP(w, r)
	}))
}

// RecordAudit writes an audit record of a change made elsewhere (a
// runbook run's pause, resume or abort).
func (e *Etcd) RecordAudit(ctx context.Context, c view.Change, action, subject string, detail any) error {
	return e.write(ctx, c, action, subject, e.cfg.Now().UTC(), detail)
}

var _ auditor = (*Etcd)(nil)
