package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ErrUnreachable is returned by Dial when no endpoint answers.
var ErrUnreachable = errors.New("no store endpoint reachable")

// ClientConfig says how to reach the store.
type ClientConfig struct {
	// Endpoints are etcd client URLs (required), e.g. https://10.0.1.5:2379.
	Endpoints []string
	// TLS is the client's CA and certificate (default: none). A CAFile is
	// required for https:// endpoints signed by a private CA.
	TLS TLSFiles
	// DialTimeout bounds the first contact (default 5s).
	DialTimeout time.Duration
	// Check makes Dial fail with ErrUnreachable unless at least one
	// endpoint answers a status request within DialTimeout (default false;
	// a node's own embedded member is dialled without it because it may be
	// waiting for quorum).
	Check bool
}

// Dial connects a client. With Check it also proves that an endpoint
// answers, so a wrong address or TLS setting fails here with a clear error
// instead of later as a timeout.
func Dial(ctx context.Context, cfg ClientConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("store client: no endpoints")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	tlsCfg, err := cfg.TLS.ClientConfig()
	if err != nil {
		return nil, err
	}
	for _, ep := range cfg.Endpoints {
		if strings.HasPrefix(ep, "https://") && tlsCfg == nil {
			return nil, fmt.Errorf("store client: endpoint %s is https but no TLS caFile is set: %w", ep, ErrTLS)
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		TLS:                  tlsCfg,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
		Context:              ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("store client %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	if !cfg.Check {
		return cli, nil
	}
	var errs []string
	for _, ep := range cfg.Endpoints {
		sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		_, err := cli.Status(sctx, ep)
		cancel()
		if err == nil {
			return cli, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", ep, err))
	}
	cli.Close()
	return nil, fmt.Errorf("%w within %s (%s)", ErrUnreachable, cfg.DialTimeout, strings.Join(errs, "; "))
}
