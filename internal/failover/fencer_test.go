package failover

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestExecFencer(t *testing.T) {
	m := Member{Site: "pangyo", Address: "10.0.0.1", Port: 5432}
	ok := ExecFencer{Command: []string{"sh", "-c", `test "$FIREBREAK_FENCE_ADDRESS:$FIREBREAK_FENCE_PORT@$FIREBREAK_FENCE_SITE" = 10.0.0.1:5432@pangyo`}}
	if err := ok.Fence(context.Background(), m); err != nil {
		t.Fatalf("fence: %v", err)
	}
	if err := ok.Check(context.Background(), m); err != nil {
		t.Fatalf("check: %v", err)
	}
	bad := ExecFencer{Command: []string{"sh", "-c", "echo no power control >&2; exit 3"}}
	if err := bad.Fence(context.Background(), m); err == nil {
		t.Fatal("failing command reported as fenced")
	}
	missing := ExecFencer{Command: []string{"/nonexistent/fence-agent"}}
	if err := missing.Check(context.Background(), m); err == nil {
		t.Fatal("missing command passes Check")
	}
}

func TestRedfishFencer(t *testing.T) {
	var got map[string]string
	var user string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		user, _, _ = r.BasicAuth()
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	m := Member{Site: "pangyo", Address: "10.0.0.1", Port: 5432}
	f := RedfishFencer{URL: srv.URL + "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", User: "admin", Password: "pw"}
	if err := f.Check(context.Background(), m); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := f.Fence(context.Background(), m); err != nil {
		t.Fatalf("fence: %v", err)
	}
	if got["ResetType"] != "ForceOff" || user != "admin" {
		t.Fatalf("BMC got %v as %q", got, user)
	}
	f.URL = srv.URL + "/wrong"
	if err := f.Fence(context.Background(), m); err == nil {
		t.Fatal("404 reported as fenced")
	}
}
