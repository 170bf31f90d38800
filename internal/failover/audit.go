package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// Event is one failover decision as recorded under store.AuditPrefix and
// store.HistoryPrefix: what was done or refused, by whom, why, and the data
// loss that was accepted.
type Event struct {
	// Kind is failover, switchover, failover-refused, promote-failed or
	// fenced-on-sight.
	Kind      string    `json:"kind"`
	Datastore string    `json:"datastore"`
	At        time.Time `json:"at"`
	Who       string    `json:"who"`
	Reason    string    `json:"reason"`
	Epoch     int64     `json:"epoch"`
	From      Member    `json:"from"`
	To        Member    `json:"to,omitempty"`
	FencedBy  string    `json:"fencedBy,omitempty"`
	// LossAccepted is true when a replica beyond the RPO was promoted on a
	// human's word; LagBytes and LagTime say how much was given up.
	LossAccepted bool                `json:"lossAccepted,omitempty"`
	LagBytes     uint64              `json:"lagBytes,omitempty"`
	LagTime      time.Duration       `json:"lagTime,omitempty"`
	Overrides    map[string]Override `json:"overrides,omitempty"`
	Notes        []string            `json:"notes,omitempty"`
	Error        string              `json:"error,omitempty"`
}

// audit appends e to the audit log and the history. Failures are logged,
// not returned: the decision already happened.
func (m *Manager) audit(ctx context.Context, e Event) {
	e.Datastore = m.ds.Name
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	val, err := json.Marshal(e)
	if err != nil {
		m.cfg.Logger.Error("encode audit event", "err", err)
		return
	}
	suffix := fmt.Sprintf("%020d-%s-%d", e.At.UnixNano(), m.ds.Name, m.seq.Add(1))
	ctx = context.WithoutCancel(ctx)
	if _, err := m.cfg.Client.Txn(ctx).Then(
		clientv3.OpPut(store.AuditPrefix+suffix, string(val)),
		clientv3.OpPut(store.HistoryPrefix+suffix, string(val)),
	).Commit(); err != nil {
		m.cfg.Logger.Error("write audit event", "kind", e.Kind, "err", err)
	}
	m.cfg.Logger.Info("failover event", "kind", e.Kind, "who", e.Who, "reason", e.Reason, "epoch", e.Epoch,
		"from", e.From.String(), "to", e.To.String(), "lossAccepted", e.LossAccepted, "error", e.Error)
}

// Events returns the failover events of a datastore recorded in the audit
// log, oldest first.
func Events(ctx context.Context, cli *clientv3.Client, datastore string) ([]Event, error) {
	resp, err := cli.Get(ctx, store.AuditPrefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	var out []Event
	for _, kv := range resp.Kvs {
		var e Event
		if json.Unmarshal(kv.Value, &e) != nil || e.Datastore != datastore || e.Kind == "" {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}
