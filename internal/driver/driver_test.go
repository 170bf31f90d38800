package driver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	tgt := Target{Kind: KindServer, Name: "s1", Site: "ansan", Rack: "r7", Role: "db", Port: 5432, Labels: map[string]string{"os": "debian"}}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"${name}", "s1"},
		{"${site}/${rack}/${role}:${port}", "ansan/r7/db:5432"},
		{"${label.os} ${label.missing}", "debian ${label.missing}"},
		{"${unknown} ${", "${unknown} ${"},
		{"a${kind}b", "aserverb"},
	}
	for _, tc := range tests {
		if got := Expand(tc.in, tgt); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	tgt := Target{Name: "s1"}
	tests := []struct {
		params    Params
		wantErr   string
		permanent bool
	}{
		{Params{"command": "true"}, "", false},
		{Params{"command": "test ${name} = s1"}, "", false},
		{Params{"command": "echo bad >&2; exit 1", "shell": "true"}, "bad", false},
		{Params{"command": "/nonexistent/binary"}, "no such file", true},
		{Params{}, "empty", true},
	}
	for _, tc := range tests {
		err := Exec{}.Do(ctx, tgt, "run", tc.params)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.params, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || IsPermanent(err) != tc.permanent {
			t.Errorf("%v: got %v (permanent %v), want %q (permanent %v)", tc.params, err, IsPermanent(err), tc.wantErr, tc.permanent)
		}
	}
	if err := (Exec{}).Do(ctx, tgt, "nope", nil); !errors.Is(err, ErrUnknownOp) {
		t.Errorf("unknown op: %v", err)
	}
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte("ready " + r.Method))
		case "/created":
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	h := &HTTP{Client: srv.Client()}
	ctx := context.Background()
	tgt := Target{Name: "login@ansan"}
	tests := []struct {
		params  Params
		wantErr string
	}{
		{Params{"url": srv.URL + "/ok"}, ""},
		{Params{"url": srv.URL + "/ok", "expect": "ready"}, ""},
		{Params{"url": srv.URL + "/ok", "method": "POST", "expect": "POST"}, ""},
		{Params{"url": srv.URL + "/ok", "expect": "nope"}, "does not contain"},
		{Params{"url": srv.URL + "/created", "status": "201"}, ""},
		{Params{"url": srv.URL + "/down"}, "status 503"},
		{Params{"url": srv.URL, "status": "abc"}, "expected a status code"},
		{Params{}, "url is empty"},
	}
	for _, tc := range tests {
		err := h.Do(ctx, tgt, "request", tc.params)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%v: got %v, want %q", tc.params, err, tc.wantErr)
		}
	}
}

func TestSimFleet(t *testing.T) {
	f := &SimFleet{MinLatency: time.Millisecond, MaxLatency: 2 * time.Millisecond}
	ctx := context.Background()
	tgt := Target{Name: "s1"}
	if err := f.Do(ctx, tgt, "power-state", nil); err == nil {
		t.Fatal("power-state On before power-on: want an error")
	}
	if err := f.Do(ctx, tgt, "power-on", nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Do(ctx, tgt, "power-state", Params{"state": "On"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Do(ctx, tgt, "applied", Params{"change": "db"}); err == nil {
		t.Fatal("applied before apply: want an error")
	}
	for i := 0; i < 2; i++ {
		if err := f.Do(ctx, tgt, "apply", Params{"change": "db"}); err != nil {
			t.Fatal(err)
		}
	}
	if f.Applied("s1", "db") != 2 || f.Repeated() != 1 {
		t.Fatalf("applied %d repeated %d, want 2 and 1", f.Applied("s1", "db"), f.Repeated())
	}
	// A cancelled action reports the cancellation.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.Do(cctx, Target{Name: "s2"}, "apply", Params{"change": "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// FailureRate 1 always fails transiently, without effect.
	bad := &SimFleet{FailureRate: 1}
	if err := bad.Do(ctx, tgt, "apply", Params{"change": "x"}); !errors.Is(err, ErrSimulated) || IsPermanent(err) {
		t.Fatalf("failure: %v", err)
	}
	if bad.Applied("s1", "x") != 0 || bad.Failures() != 1 {
		t.Fatal("a failed action must have no effect")
	}
}
