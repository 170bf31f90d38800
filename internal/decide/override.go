package decide

import (
	"errors"
	"fmt"
	"time"
)

// Override kinds.
const (
	// KindDrain takes every endpoint of the site named by Target out of routing.
	KindDrain = "drain"
	// KindForceUp keeps the endpoint Target in routing whatever the verdict.
	KindForceUp = "force-up"
	// KindForceDown takes the endpoint Target out of routing.
	KindForceDown = "force-down"
	// KindFreeze stops automatic routing changes for the service Target, or
	// for every service when Target is empty. Other overrides still apply.
	KindFreeze = "freeze"
)

// ErrBadOverride is returned by Override.Validate.
var ErrBadOverride = errors.New("bad override")

// Override is a human decision that outranks verdicts. It is stored as JSON
// at store.OverridesPrefix+ID and stops applying at Expires.
type Override struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Target  string    `json:"target"`
	Who     string    `json:"who"`
	Why     string    `json:"why"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Active reports whether the override applies at now.
func (o Override) Active(now time.Time) bool {
	return !now.Before(o.Created) && now.Before(o.Expires)
}

// Validate checks that the override names who, why, an expiry after its
// creation and a target fitting its kind.
func (o Override) Validate() error {
	switch o.Kind {
	case KindDrain, KindForceUp, KindForceDown:
		if o.Target == "" {
			return fmt.Errorf("%w: kind %s needs a target", ErrBadOverride, o.Kind)
		}
	case KindFreeze:
	default:
		return fmt.Errorf("%w: kind %q: expected drain, force-up, force-down or freeze", ErrBadOverride, o.Kind)
	}
	if o.ID == "" {
		return fmt.Errorf("%w: empty id", ErrBadOverride)
	}
	if o.Who == "" {
		return fmt.Errorf("%w: who is empty", ErrBadOverride)
	}
	if o.Why == "" {
		return fmt.Errorf("%w: why (reason) is empty", ErrBadOverride)
	}
	if !o.Expires.After(o.Created) {
		return fmt.Errorf("%w: expires %s is not after created %s", ErrBadOverride, o.Expires.Format(time.RFC3339), o.Created.Format(time.RFC3339))
	}
	return nil
}
