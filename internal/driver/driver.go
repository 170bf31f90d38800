// Package driver holds the actions a runbook applies to its targets: run a
// local command (exec), run a command over SSH (ssh), call a URL (http), and
// power servers on and off through their BMC (redfish). SimFleet is a test
// fixture that simulates a fleet of servers for tests and benchmarks.
//
// A Driver applies one named operation to one target. Operations that check
// state (a verification) are ordinary operations that return nil when the
// state is as expected and an error saying what was found otherwise.
package driver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Target kinds.
const (
	KindServer    = "server"
	KindService   = "service"
	KindDatastore = "datastore"
)

// Target is what an operation is applied to: a server from the inventory, or
// a service or datastore (at one site) from the topology.
type Target struct {
	// Kind is KindServer, KindService or KindDatastore.
	Kind string
	// Name identifies the target in a run: the server name, or
	// "service@site" for services and datastores.
	Name string
	// Site and Rack locate the target; Rack is empty for services.
	Site, Rack string
	// Role is the server's role (storage, db, app...); empty otherwise.
	Role string
	// Labels are free-form server labels.
	Labels map[string]string
	// BMC is the base URL of the server's Redfish service
	// (https://10.9.0.1); empty when it has none.
	BMC string
	// SSH is host:port of the server's SSH daemon.
	SSH string
	// Address and Port are the first endpoint of a service, or the
	// datastore member, at the target's site.
	Address string
	Port    int
}

// Params are an operation's parameters, as written in the runbook. Values may
// contain ${...} references to the target, expanded by Expand.
type Params map[string]string

// Driver applies operations to targets.
//
// Do blocks until the operation has finished, failed, or ctx is done; it
// must return promptly once ctx is done. Implementations must be safe for
// concurrent use by many goroutines. An error wrapped with Permanent tells
// the caller that retrying will not help.
type Driver interface {
	Do(ctx context.Context, t Target, op string, p Params) error
}

// Ops is implemented by drivers that can list their operations, so that a
// runbook naming an unknown one is refused when it is loaded.
type Ops interface {
	Ops() []string
}

// Registry maps driver names (as written in runbooks) to drivers.
type Registry map[string]Driver

// Get returns the driver named name.
func (r Registry) Get(name string) (Driver, error) {
	d, ok := r[name]
	if !ok {
		names := make([]string, 0, len(r))
		for n := range r {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown driver %q (have: %s)", name, strings.Join(names, ", "))
	}
	return d, nil
}

// ErrUnknownOp is returned (wrapped, permanent) for an operation a driver
// does not have.
var ErrUnknownOp = errors.New("unknown operation")

func unknownOp(driver, op string, have []string) error {
	return Permanent(fmt.Errorf("%s: %w %q (expected one of: %s)", driver, ErrUnknownOp, op, strings.Join(have, ", ")))
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying will not fix (bad parameters,
// authentication refused, unknown host key).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Expand replaces ${name}, ${service} (the name without "@site"), ${kind}, ${site}, ${rack}, ${role}, ${bmc}, ${ssh},
// ${address}, ${port} and ${label.KEY} in s with the target's values. An
// unknown reference is left as written.
func Expand(s string, t Target) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		key := s[i+2 : i+j]
		if v, ok := lookup(key, t); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

func lookup(key string, t Target) (string, bool) {
	switch key {
	case "name":
		return t.Name, true
	case "service":
		base, _, _ := strings.Cut(t.Name, "@")
		return base, true
	case "kind":
		return t.Kind, true
	case "site":
		return t.Site, true
	case "rack":
		return t.Rack, true
	case "role":
		return t.Role, true
	case "bmc":
		return t.BMC, true
	case "ssh":
		return t.SSH, true
	case "address":
		return t.Address, true
	case "port":
		return strconv.Itoa(t.Port), true
	}
	if l, ok := strings.CutPrefix(key, "label."); ok {
		v, ok := t.Labels[l]
		return v, ok
	}
	return "", false
}
