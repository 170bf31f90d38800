package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// Epoch states.
const (
	EpochPromoting = "promoting" // claimed; the promotion is under way
	EpochPromoted  = "promoted"  // promotion confirmed; routing points at Primary
	EpochFailed    = "failed"    // the promotion did not complete; Primary may not be writable
)

// Epoch is the value at store.EpochsPrefix+<datastore>: which member holds
// the primary role, since which promotion.
type Epoch struct {
	Datastore string `json:"datastore"`
	// Epoch counts promotions; 0 (no key) means the topology's primary.
	Epoch int64 `json:"epoch"`
	// Primary is the member that holds (or is being given) the role.
	Primary Member `json:"primary"`
	// Previous is the primary it replaced; it must be resynced before it
	// is re-admitted.
	Previous Member `json:"previous"`
	State    string `json:"state"`
	// Planned is true for a switchover.
	Planned bool      `json:"planned"`
	At      time.Time `json:"at"`
	// Who and Reason say who asked (a leader's node name, or a person).
	Who    string `json:"who"`
	Reason string `json:"reason"`
	// LossAccepted, LagBytes and LagTime record the accepted data loss.
	LossAccepted bool          `json:"lossAccepted"`
	LagBytes     uint64        `json:"lagBytes"`
	LagTime      time.Duration `json:"lagTime"`
}

// EpochKey returns the etcd key of a datastore's epoch.
func EpochKey(datastore string) string { return store.EpochsPrefix + datastore }

// ReadEpoch returns the datastore's epoch and its etcd ModRevision (0 when
// the key does not exist: no promotion yet).
func ReadEpoch(ctx context.Context, cli *clientv3.Client, datastore string) (Epoch, int64, error) {
	resp, err := cli.Get(ctx, EpochKey(datastore))
	if err != nil {
		return Epoch{}, 0, fmt.Errorf("read epoch of %s: %w", datastore, err)
	}
	if len(resp.Kvs) == 0 {
		return Epoch{Datastore: datastore}, 0, nil
	}
	var e Epoch
	if err := json.Unmarshal(resp.Kvs[0].Value, &e); err != nil {
		return Epoch{}, 0, fmt.Errorf("decode epoch of %s: %w", datastore, err)
	}
	return e, resp.Kvs[0].ModRevision, nil
}

// CompareAndSwapEpoch writes e only if the key's ModRevision is still
// rev (0: the key must not exist). It returns the new ModRevision, or
// ErrEpochConflict when another writer got there first.
func CompareAndSwapEpoch(ctx context.Context, cli *clientv3.Client, rev int64, e Epoch) (int64, error) {
	val, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	key := EpochKey(e.Datastore)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(val))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("write epoch of %s: %w", e.Datastore, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w (epoch of %s changed since revision %d)", ErrEpochConflict, e.Datastore, rev)
	}
	return resp.Header.Revision, nil
}
