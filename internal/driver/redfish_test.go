package driver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// bmc is a small Redfish service following the DMTF schema for the parts the
// driver uses: the Systems collection, a ComputerSystem with PowerState, and
// the #ComputerSystem.Reset action with its allowable values.
type bmc struct {
	mu     sync.Mutex
	power  string
	resets []string
	user   string
	pass   string
}

func (b *bmc) handler() http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != b.user || p != b.pass {
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": "Base.1.0.NoValidSession", "message": "authentication required"}})
				return
			}
			w.Header().Set("OData-Version", "4.0")
			h(w, r)
		}
	}
	mux.HandleFunc("GET /redfish/v1/Systems", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@odata.type":         "#ComputerSystemCollection.ComputerSystemCollection",
			"@odata.id":           "/redfish/v1/Systems",
			"Members@odata.count": 1,
			"Members":             []any{map[string]any{"@odata.id": "/redfish/v1/Systems/437XR1138R2"}},
		})
	}))
	mux.HandleFunc("GET /redfish/v1/Systems/437XR1138R2", auth(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		defer b.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
			"@odata.id":   "/redfish/v1/Systems/437XR1138R2",
			"Id":          "437XR1138R2",
			"PowerState":  b.power,
			"Actions": map[string]any{
				"#ComputerSystem.Reset": map[string]any{
					"target":                            "/redfish/v1/Systems/437XR1138R2/Actions/ComputerSystem.Reset",
					"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart"},
				},
			},
		})
	}))
	mux.HandleFunc("POST /redfish/v1/Systems/437XR1138R2/Actions/ComputerSystem.Reset", auth(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ ResetType string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.resets = append(b.resets, req.ResetType)
		switch req.ResetType {
		case "On", "ForceRestart":
			b.power = PowerOn
		case "ForceOff", "GracefulShutdown":
			b.power = PowerOff
		default:
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": "unsupported ResetType"}})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return mux
}

func TestRedfishPower(t *testing.T) {
	b := &bmc{power: PowerOff, user: "admin", pass: "secret"}
	srv := httptest.NewServer(b.handler())
	t.Cleanup(srv.Close)
	drv := &Redfish{Client: srv.Client(), Username: "admin", Password: "secret"}
	tgt := Target{Kind: KindServer, Name: "srv-1", BMC: srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	steps := []struct {
		op         string
		params     Params
		wantErr    string
		wantPower  string
		wantResets int
	}{
		{"power-state", Params{"state": "On"}, `power state is "Off"`, PowerOff, 0},
		{"power-on", nil, "", PowerOn, 1},
		{"power-on", nil, "", PowerOn, 1}, // already on: nothing sent
		{"power-state", nil, "", PowerOn, 1},
		{"reset", nil, "", PowerOn, 2},
		{"reset", Params{"type": "Nmi"}, "not allowed", PowerOn, 2},
		{"power-off", Params{"type": "GracefulShutdown"}, "", PowerOff, 3},
		{"power-off", nil, "", PowerOff, 3},
		{"power-state", Params{"state": "Off"}, "", PowerOff, 3},
		{"blink", nil, "unknown operation", PowerOff, 3},
	}
	for i, s := range steps {
		err := drv.Do(ctx, tgt, s.op, s.params)
		if s.wantErr == "" && err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
		if s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("step %d %s: got %v, want error containing %q", i, s.op, err, s.wantErr)
		}
		b.mu.Lock()
		power, resets := b.power, len(b.resets)
		b.mu.Unlock()
		if power != s.wantPower || resets != s.wantResets {
			t.Fatalf("step %d %s: power %s with %d resets, want %s with %d", i, s.op, power, resets, s.wantPower, s.wantResets)
		}
	}
}

func TestRedfishErrors(t *testing.T) {
	b := &bmc{power: PowerOff, user: "admin", pass: "secret"}
	srv := httptest.NewServer(b.handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	bad := &Redfish{Client: srv.Client(), Username: "admin", Password: "wrong"}
	err := bad.Do(ctx, Target{Name: "s", BMC: srv.URL}, "power-on", nil)
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "authentication required") {
		t.Fatalf("wrong password: got %v, want a permanent 401 error with the Redfish message", err)
	}
	good := &Redfish{Client: srv.Client(), Username: "admin", Password: "secret"}
	if err := good.Do(ctx, Target{Name: "s"}, "power-on", nil); err == nil || !IsPermanent(err) {
		t.Fatalf("no bmc: got %v, want a permanent error", err)
	}
	srv.Close()
	if err := good.Do(ctx, Target{Name: "s", BMC: srv.URL}, "power-on", nil); err == nil || IsPermanent(err) {
		t.Fatalf("bmc down: got %v, want a transient error", err)
	}
}
