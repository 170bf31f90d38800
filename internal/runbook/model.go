// Package runbook runs recovery runbooks: DAGs of steps, each applying an
// action through a driver to a set of targets (servers from an inventory,
// services and datastores from the topology), in dependency order, massively
// parallel under concurrency limits, with retries, verification and
// progress persisted in the store so that another node can resume a run.
//
// Files split by role: model.go (the runbook), parse.go (YAML with
// file:line:col errors), plan.go (targets and the per-target DAG),
// sched.go (limits and the ready queue), runner.go (execution and resume),
// journal.go and etcd.go (persistence), progress.go (status and ETA),
// bound.go (the makespan lower bound).
package runbook

import (
	"time"

	"github.com/firebreak/firebreak/internal/driver"
	"github.com/firebreak/firebreak/internal/topology"
)

// Defaults applied by the parser where a field is absent.
const (
	DefaultGlobalLimit = 1000
	DefaultRetries     = 3
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultTimeout     = 5 * time.Minute
	DefaultVerifyEvery = time.Second
	DefaultEstimate    = 10 * time.Second
	DefaultServerTier  = 2
)

// Dependency scopes: how much of a dependency step a target waits for.
const (
	ScopeTarget = "target" // the same target in the dependency step
	ScopeRack   = "rack"   // every target of the dependency step in the same rack
	ScopeSite   = "site"   // every target of the dependency step in the same site
	ScopeAll    = "all"    // the whole dependency step
)

// Pos is a position in a source file (1-based).
type Pos struct{ Line, Col int }

// Runbook is one parsed, validated runbook file.
type Runbook struct {
	// Source is the file the runbook was read from.
	Source string
	// Name names the runbook (required).
	Name        string
	Description string
	// Topology is the topology the runbook's service and datastore targets
	// come from; nil when the file names none.
	Topology *topology.Topology
	// Servers is the inventory.
	Servers []*Server
	Limits  Limits
	Drivers DriverConfig
	Steps   []*Step
}

// Server is one machine of the inventory.
type Server struct {
	Name, Site, Rack, Role string
	// Tier is the priority of the server's steps, 0 first (default 2).
	Tier   int
	Labels map[string]string
	// BMC is the Redfish base URL; SSH is host:port.
	BMC, SSH string
	Pos      Pos
}

// Limits bound how many actions run at once. Zero means unlimited, except
// Global (default 1000).
type Limits struct {
	Global  int
	PerSite int
	// PerRack bounds actions per rack across all steps (power-on inrush).
	PerRack int
	// PerDriver bounds actions per driver name.
	PerDriver map[string]int
}

// StepLimits bound one step's actions; zero means unlimited.
type StepLimits struct {
	Parallel, PerSite, PerRack int
}

// DriverConfig configures the built-in drivers.
type DriverConfig struct {
	SSH     SSHConfig
	Redfish RedfishConfig
}

// SSHConfig configures the ssh driver.
type SSHConfig struct {
	User, Key, KnownHosts string
}

// RedfishConfig configures the redfish driver. The password is read from
// the environment variable PasswordEnv, never from the file.
type RedfishConfig struct {
	User, PasswordEnv string
	// Insecure skips BMC certificate verification (default false).
	Insecure bool
}

// Step is one node of the runbook DAG.
type Step struct {
	Name    string
	Action  Action
	Verify  *Verify
	Targets Selector
	// DependsOn lists the steps this one waits for, each with a scope.
	DependsOn []Dep
	// Order follows the topology's service dependencies between the step's
	// own targets (a service waits for the services and datastores it
	// depends on, at the same site). Default true.
	Order bool
	// Retries is how many times a failed attempt is retried (default 3);
	// Backoff the first wait (default 1s), doubled up to MaxBackoff (1m).
	Retries             int
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt, verification included (default 5m).
	Timeout time.Duration
	// Idempotent says the action may be repeated safely. A non-idempotent
	// step must have a verification: after a failed attempt or a crash,
	// the runner verifies before acting again. Default false.
	Idempotent bool
	// Estimate is the expected duration of one action, for --dry-run's
	// predicted makespan (default 10s).
	Estimate time.Duration
	Limits   StepLimits
	Pos      Pos
}

// Action is a driver operation with parameters.
type Action struct {
	Driver, Op string
	Params     driver.Params
	Pos        Pos
}

// Verify is the check that must pass before a target's dependants start.
type Verify struct {
	Action
	// Within is how long the check is retried until it passes (default 0:
	// once); Every the pause between tries (default 1s).
	Within, Every time.Duration
}

// Dep is a dependency on another step.
type Dep struct {
	Step string
	// Scope is one of the Scope constants. Default: target when both steps
	// target only servers, otherwise site.
	Scope string
	Pos   Pos
}

// Selector chooses a step's targets. A nil part selects nothing of that
// kind; an empty one selects all of it. Within a part, every non-empty field
// must match (a list matches any of its values).
type Selector struct {
	Servers    *ServerSelector
	Services   *ServiceSelector
	Datastores *DatastoreSelector
}

// ServerSelector selects servers.
type ServerSelector struct {
	Names, Sites, Racks, Roles []string
	// Exclude lists names never selected.
	Exclude []string
	Labels  map[string]string
}

// ServiceSelector selects services, one target per site with endpoints.
type ServiceSelector struct {
	Names, Sites, Kinds, Exclude []string
	Tiers                        []int
}

// DatastoreSelector selects datastores, one target per site with a member.
type DatastoreSelector struct {
	Names, Sites, Engines, Exclude []string
	Tiers                          []int
}
