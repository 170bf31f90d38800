package failover

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// StoreVerdict returns a SiteVerdict that reads the leader's site verdicts
// from the store (store.SiteVerdictsPrefix+<site>, JSON with "state":
// "down" or "up"). A site without a verdict is not down.
func StoreVerdict(cli *clientv3.Client) SiteVerdict {
	return func(ctx context.Context, site string) (bool, error) {
		resp, err := cli.Get(ctx, store.SiteVerdictsPrefix+site)
		if err != nil {
			return false, fmt.Errorf("read verdict of site %s: %w", site, err)
		}
		if len(resp.Kvs) == 0 {
			return false, nil
		}
		var v struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
			return false, fmt.Errorf("decode verdict of site %s: %w", site, err)
		}
		return v.State == "down", nil
	}
}
