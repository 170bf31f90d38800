package runbook

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Handler serves runs as JSON for the API and the dashboard, from the store
// (so any node can serve it), preferring live progress when local has it:
//
//	GET  {prefix}                  [{"id": ..., "state": State}, ...]
//	GET  {prefix}{id}              Progress
//	POST {prefix}{id}/{control}    control is pause, resume or abort
//
// Authentication is the caller's: mount it behind the API's auth.
func Handler(j Journal, local *Runner, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, prefix)
		ctx := r.Context()
		writeJSON := func(v any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		fail := func(err error) {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrNoRun) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
		}
		switch {
		case rest == "" && r.Method == http.MethodGet:
			ids, err := j.List(ctx)
			if err != nil {
				fail(err)
				return
			}
			type run struct {
				ID    string `json:"id"`
				State State  `json:"state"`
			}
			out := []run{}
			for _, id := range ids {
				st, err := j.State(ctx, id)
				if err != nil {
					fail(err)
					return
				}
				out = append(out, run{id, st})
			}
			writeJSON(out)
		case !strings.Contains(rest, "/") && r.Method == http.MethodGet:
			if local != nil {
				if p, ok := local.Snapshot(rest); ok {
					writeJSON(p)
					return
				}
			}
			p, err := ReadProgress(ctx, j, rest)
			if err != nil {
				fail(err)
				return
			}
			writeJSON(p)
		case r.Method == http.MethodPost:
			id, cmd, _ := strings.Cut(rest, "/")
			control := map[string]string{"pause": ControlPause, "resume": ControlRun, "abort": ControlAbort}[cmd]
			if control == "" {
				http.Error(w, "expected POST .../{id}/pause, resume or abort", http.StatusNotFound)
				return
			}
			if err := j.SetControl(ctx, id, control); err != nil {
				fail(err)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		default:
			http.Error(w, "not found", http.StatusNotFound)
		}
	})
}
