package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/store"
)

// auditRecord is an Event with the API's audit record fields.
type auditRecord struct {
	Event
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
}

// Event is one failover decision as recorded under store.AuditPrefix (with
// the API's audit fields time, action and subject added; a decide.Event
// of kind "failover" goes to store.HistoryPrefix): what was done or refused, by whom, why, and the data
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
	// The audit record carries the API's audit fields (time, action,
	// subject) besides the event's own, so GET /api/v1/audit lists it; the
	// history gets a decide.Event, the shape the dashboard's timeline and
	// the API's history read.
	val, err := json.Marshal(auditRecord{Event: e, Time: e.At, Action: "failover." + e.Kind, Subject: e.Datastore})
	if err != nil {
		m.cfg.Logger.Error("encode audit event", "err", err)
		return
	}
	hist := decide.Event{Time: e.At, Kind: "failover", Subject: e.Datastore, From: e.From.String(), To: e.Kind, Reason: e.Reason}
	if e.To.Address != "" {
		hist.To = e.Kind + " to " + e.To.String()
	}
	if e.Error != "" {
		hist.Reason += ": " + e.Error
	}
	hval, err := json.Marshal(hist)
	if err != nil {
		m.cfg.Logger.Error("encode history event", "err", err)
		return
	}
	suffix := fmt.Sprintf("%020d-%s-%d", e.At.UnixNano(), m.ds.Name, m.seq.Add(1))
	ctx = context.WithoutCancel(ctx)
	if _, err := m.cfg.Client.Txn(ctx).Then(
		clientv3.OpPut(store.AuditPrefix+suffix, string(val)),
		clientv3.OpPut(store.HistoryPrefix+suffix, string(hval)),
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
