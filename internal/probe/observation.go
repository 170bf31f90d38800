package probe

import "time"

// Observation is one observer's current opinion of one endpoint, as written
// to store.ObservationsPrefix+<observer>/<endpoint-id> under the observer's
// lease. It changes only on a transition (after rise/fall hysteresis).
type Observation struct {
	Observer string    `json:"observer"`
	Endpoint string    `json:"endpoint"`
	Up       bool      `json:"up"`
	Since    time.Time `json:"since"`
	// Detail is the last check error when down, for people.
	Detail string `json:"detail,omitempty"`
}
