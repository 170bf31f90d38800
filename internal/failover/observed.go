package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/firebreak/firebreak/internal/store"
)

// ObservedPrefix holds, per datastore, the primary's last observed write
// position (JSON Observation). Run writes it so that a failover started on
// another node, or from the CLI, still knows the "last known lag" after the
// primary is gone.
const ObservedPrefix = store.FailoverObservedPrefix

// Observation is the primary's write position at a moment.
type Observation struct {
	Primary  Member    `json:"primary"`
	At       time.Time `json:"at"`
	Position uint64    `json:"position"`
}

// persistObservation stores the newest primary sample (at most once per
// Interval, only when it changed or every 10 intervals while idle).
func (m *Manager) persistObservation(ctx context.Context, primary Member, at time.Time, pos uint64) {
	m.mu.Lock()
	last := m.lastPersist
	if last.Position == pos && at.Sub(last.At) < 10*m.cfg.Interval {
		m.mu.Unlock()
		return
	}
	m.lastPersist = Observation{Primary: primary, At: at, Position: pos}
	m.mu.Unlock()
	val, _ := json.Marshal(Observation{Primary: primary, At: at.UTC(), Position: pos})
	if _, err := m.cfg.Client.Put(ctx, ObservedPrefix+m.ds.Name, string(val)); err != nil {
		m.cfg.Logger.Debug("persist observation", "err", err)
	}
}

// loadObservation seeds an empty tracker with the stored observation of
// primary, if any.
func (m *Manager) loadObservation(ctx context.Context, primary Member) error {
	if _, _, ok := m.tracker.Last(); ok {
		return nil
	}
	resp, err := m.cfg.Client.Get(ctx, ObservedPrefix+m.ds.Name)
	if err != nil {
		return fmt.Errorf("read observation of %s: %w", m.ds.Name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var o Observation
	if err := json.Unmarshal(resp.Kvs[0].Value, &o); err != nil || !o.Primary.Same(primary) {
		return nil
	}
	m.tracker.ObservePrimary(o.At, o.Position)
	return nil
}
