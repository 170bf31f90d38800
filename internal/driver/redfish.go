package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Redfish powers servers on and off through their BMC, following the DMTF
// Redfish schema: the ComputerSystem resource's PowerState property and its
// #ComputerSystem.Reset action. The target's BMC field is the service root's
// base URL (https://10.9.0.1); the system is the first member of
// /redfish/v1/Systems unless the parameter system names one (an @odata.id
// such as /redfish/v1/Systems/1).
//
// Operations:
//
//	power-on     ResetType On; nothing is sent when PowerState is already On
//	power-off    ResetType ForceOff (or the parameter type, e.g.
//	             GracefulShutdown); nothing is sent when already Off
//	reset        ResetType ForceRestart (or the parameter type)
//	power-state  succeeds when PowerState equals the parameter state
//	             (default On); a verification
type Redfish struct {
	// Client makes the requests (default http.DefaultClient); set its
	// Transport's TLS config for BMC certificates.
	Client *http.Client
	// Username and Password are sent with HTTP basic authentication when
	// Username is set.
	Username, Password string
}

// Redfish power states (Resource.PowerState).
const (
	PowerOn  = "On"
	PowerOff = "Off"
)

// Ops lists Redfish's operations.
func (*Redfish) Ops() []string { return []string{"power-on", "power-off", "reset", "power-state"} }

// Do applies op to the target's system.
func (r *Redfish) Do(ctx context.Context, t Target, op string, p Params) error {
	if t.BMC == "" {
		return Permanent(fmt.Errorf("redfish: target %s has no bmc address", t.Name))
	}
	base := strings.TrimRight(Expand(t.BMC, t), "/")
	switch op {
	case "power-on":
		return r.power(ctx, base, p, PowerOn, "On")
	case "power-off":
		return r.power(ctx, base, p, PowerOff, orDefault(p["type"], "ForceOff"))
	case "reset":
		sys, err := r.system(ctx, base, p)
		if err != nil {
			return err
		}
		return r.reset(ctx, base, sys, orDefault(p["type"], "ForceRestart"))
	case "power-state":
		sys, err := r.system(ctx, base, p)
		if err != nil {
			return err
		}
		want := orDefault(p["state"], PowerOn)
		if sys.PowerState != want {
			return fmt.Errorf("redfish %s: power state is %q, expected %q", base, sys.PowerState, want)
		}
		return nil
	}
	return unknownOp("redfish", op, r.Ops())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// computerSystem is the part of the ComputerSystem resource used here.
type computerSystem struct {
	ID         string `json:"@odata.id"`
	PowerState string `json:"PowerState"`
	Actions    struct {
		Reset struct {
			Target  string   `json:"target"`
			Allowed []string `json:"ResetType@Redfish.AllowableValues"`
		} `json:"#ComputerSystem.Reset"`
	} `json:"Actions"`
}

func (r *Redfish) power(ctx context.Context, base string, p Params, state, resetType string) error {
	sys, err := r.system(ctx, base, p)
	if err != nil {
		return err
	}
	if sys.PowerState == state {
		return nil
	}
	return r.reset(ctx, base, sys, resetType)
}

func (r *Redfish) reset(ctx context.Context, base string, sys *computerSystem, resetType string) error {
	target := sys.Actions.Reset.Target
	if target == "" {
		target = strings.TrimRight(sys.ID, "/") + "/Actions/ComputerSystem.Reset"
	}
	if len(sys.Actions.Reset.Allowed) > 0 && !contains(sys.Actions.Reset.Allowed, resetType) {
		return Permanent(fmt.Errorf("redfish %s: reset type %q not allowed (allowed: %s)", base, resetType, strings.Join(sys.Actions.Reset.Allowed, ", ")))
	}
	body, _ := json.Marshal(map[string]string{"ResetType": resetType})
	resp, err := r.do(ctx, http.MethodPost, base+target, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusNoContent:
		return nil
	}
	return r.statusError(base+target, resp)
}

func (r *Redfish) system(ctx context.Context, base string, p Params) (*computerSystem, error) {
	path := p["system"]
	if path == "" {
		var coll struct {
			Members []struct {
				ID string `json:"@odata.id"`
			} `json:"Members"`
		}
		if err := r.getJSON(ctx, base+"/redfish/v1/Systems", &coll); err != nil {
			return nil, err
		}
		if len(coll.Members) == 0 {
			return nil, Permanent(fmt.Errorf("redfish %s: no systems in /redfish/v1/Systems", base))
		}
		path = coll.Members[0].ID
	}
	var sys computerSystem
	if err := r.getJSON(ctx, base+path, &sys); err != nil {
		return nil, err
	}
	if sys.ID == "" {
		sys.ID = path
	}
	return &sys, nil
}

func (r *Redfish) getJSON(ctx context.Context, url string, v any) error {
	resp, err := r.do(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r.statusError(url, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v); err != nil {
		return fmt.Errorf("redfish GET %s: decode: %w", url, err)
	}
	return nil
}

func (r *Redfish) do(ctx context.Context, method, url string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, Permanent(fmt.Errorf("redfish: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Username != "" {
		req.SetBasicAuth(r.Username, r.Password)
	}
	c := r.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("redfish %s %s: %w", method, url, err)
	}
	return resp, nil
}

// statusError reads a Redfish error body ({"error":{"message":...}}).
func (r *Redfish) statusError(url string, resp *http.Response) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(data, &e)
	err := fmt.Errorf("redfish %s: status %d", url, resp.StatusCode)
	if e.Error.Message != "" {
		err = fmt.Errorf("redfish %s: status %d: %s", url, resp.StatusCode, e.Error.Message)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound {
		return Permanent(err)
	}
	return err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var _ Driver = (*Redfish)(nil)
