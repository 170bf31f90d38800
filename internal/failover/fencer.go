package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// ExecFencer fences by running a command (ipmitool, a PDU client, a cloud
// CLI, a runbook step). The member is passed in the environment as
// FIREBREAK_FENCE_SITE, FIREBREAK_FENCE_ADDRESS and FIREBREAK_FENCE_PORT;
// exit status 0 means fenced.
type ExecFencer struct {
	// Command is the argv to run; required.
	Command []string
	// CheckCommand, when set, is run by Check; otherwise Check only looks
	// the command up on PATH.
	CheckCommand []string
}

// Fence runs the command.
func (f ExecFencer) Fence(ctx context.Context, m Member) error {
	return f.run(ctx, f.Command, m)
}

// Check runs CheckCommand, or verifies that Command exists.
func (f ExecFencer) Check(ctx context.Context, m Member) error {
	if len(f.CheckCommand) > 0 {
		return f.run(ctx, f.CheckCommand, m)
	}
	if len(f.Command) == 0 {
		return errors.New("exec fencer: no command")
	}
	if _, err := exec.LookPath(f.Command[0]); err != nil {
		return fmt.Errorf("exec fencer: %w", err)
	}
	return nil
}

func (f ExecFencer) run(ctx context.Context, argv []string, m Member) error {
	if len(argv) == 0 {
		return errors.New("exec fencer: no command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"FIREBREAK_FENCE_SITE="+m.Site,
		"FIREBREAK_FENCE_ADDRESS="+m.Address,
		"FIREBREAK_FENCE_PORT="+strconv.Itoa(m.Port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("exec fencer %s: %w: %s", argv[0], err, bytes.TrimSpace(out))
	}
	return nil
}

// RedfishFencer powers a server off through its BMC's Redfish API:
// POST {"ResetType":"ForceOff"} to the ComputerSystem.Reset action URL.
type RedfishFencer struct {
	// URL is the reset action, e.g.
	// https://bmc/redfish/v1/Systems/1/Actions/ComputerSystem.Reset.
	URL string
	// User and Password for HTTP basic auth; optional.
	User, Password string
	// Client defaults to an http.Client with a 10s timeout.
	Client *http.Client
}

// Fence posts ForceOff; any 2xx answer means fenced.
func (f RedfishFencer) Fence(ctx context.Context, m Member) error {
	body, _ := json.Marshal(map[string]string{"ResetType": "ForceOff"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("redfish fence %s: %w", m, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if f.User != "" {
		req.SetBasicAuth(f.User, f.Password)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("redfish fence %s: %w", m, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("redfish fence %s: %s", m, resp.Status)
	}
	return nil
}

// Check verifies that the BMC accepts TCP connections.
func (f RedfishFencer) Check(ctx context.Context, m Member) error {
	u, err := url.Parse(f.URL)
	if err != nil {
		return fmt.Errorf("redfish url: %w", err)
	}
	host := u.Host
	if u.Port() == "" {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("redfish fence path: %w", err)
	}
	return c.Close()
}

func (f RedfishFencer) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// FencerFunc adapts a function to Fencer; Check always succeeds.
type FencerFunc func(ctx context.Context, m Member) error

// Fence calls f.
func (f FencerFunc) Fence(ctx context.Context, m Member) error { return f(ctx, m) }

// Check returns nil.
func (f FencerFunc) Check(context.Context, Member) error { return nil }

var (
	_ Fencer = ExecFencer{}
	_ Fencer = RedfishFencer{}
	_ Fencer = FencerFunc(nil)
)
