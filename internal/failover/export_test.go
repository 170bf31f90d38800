package failover

// SetBeforeClaim installs a hook run right before the epoch
// compare-and-swap, so tests can line two failovers up on it.
func (m *Manager) SetBeforeClaim(f func()) { m.beforeClaim = f }
