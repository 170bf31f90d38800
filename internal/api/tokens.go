package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/store"
)

// TokensPrefix holds API tokens kept in the store, one key per token name:
// /firebreak/v1/tokens/<name> is a JSON StoredToken. Only the SHA-256 of a
// token is stored. Tokens in the store are shared by every node; a tokens
// file is per node. Both may be used together.
const TokensPrefix = store.TokensPrefix

// StoredToken is the value at TokensPrefix+<name>.
type StoredToken struct {
	// Hash is "sha256:" and the hex SHA-256 of the token.
	Hash string `json:"hash"`
	// Role is viewer, operator or admin.
	Role string `json:"role"`
	// Created is when the token was stored.
	Created time.Time `json:"created"`
}

// PutToken stores (or replaces) the token name with role; only its hash is
// written.
func PutToken(ctx context.Context, kv clientv3.KV, name string, role auth.Role, secret string) error {
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return fmt.Errorf("token name %q: expected a non-empty name without slashes or spaces", name)
	}
	if len(secret) < 16 {
		return fmt.Errorf("token %s: too short: expected at least 16 characters", name)
	}
	if role < auth.Viewer || role > auth.Admin {
		return fmt.Errorf("token %s: role %s: expected viewer, operator or admin", name, role)
	}
	b, err := json.Marshal(StoredToken{Hash: auth.HashToken(secret), Role: role.String(), Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, TokensPrefix+name, string(b)); err != nil {
		return fmt.Errorf("store token %s: %w", name, err)
	}
	return nil
}

// DeleteToken removes the stored token name; it reports whether it existed.
func DeleteToken(ctx context.Context, kv clientv3.KV, name string) (bool, error) {
	resp, err := kv.Delete(ctx, TokensPrefix+name)
	if err != nil {
		return false, fmt.Errorf("delete token %s: %w", name, err)
	}
	return resp.Deleted > 0, nil
}

// tokensFrom builds a token set from stored values; bad entries are
// logged and skipped.
func tokensFrom(kvs map[string][]byte, log *slog.Logger) *auth.Tokens {
	names := make([]string, 0, len(kvs))
	for n := range kvs {
		names = append(names, n)
	}
	sort.Strings(names)
	var lines strings.Builder
	for _, n := range names {
		var st StoredToken
		if err := json.Unmarshal(kvs[n], &st); err != nil {
			log.Warn("undecodable stored token", "name", n, "err", err)
			continue
		}
		line := st.Hash + " " + st.Role + " " + n
		if _, err := auth.ParseTokens(TokensPrefix+n, []byte(line)); err != nil {
			log.Warn("bad stored token", "name", n, "err", err)
			continue
		}
		lines.WriteString(line + "\n")
	}
	t, _ := auth.ParseTokens("store", []byte(lines.String()))
	return t
}

// FollowTokens keeps a's stored tokens equal to those under TokensPrefix
// until ctx ends (it returns ctx.Err()). Without a store it keeps the last
// set it read.
func FollowTokens(ctx context.Context, cli *clientv3.Client, a *auth.Authenticator, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cli.Get(gctx, TokensPrefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			sleepCtx(ctx, 500*time.Millisecond)
			continue
		}
		kvs := map[string][]byte{}
		for _, kv := range resp.Kvs {
			kvs[strings.TrimPrefix(string(kv.Key), TokensPrefix)] = kv.Value
		}
		a.SetStored(tokensFrom(kvs, logger))
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range cli.Watch(wctx, TokensPrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Canceled || wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				name := strings.TrimPrefix(string(ev.Kv.Key), TokensPrefix)
				if ev.Type == clientv3.EventTypeDelete {
					delete(kvs, name)
				} else {
					kvs[name] = ev.Kv.Value
				}
			}
			a.SetStored(tokensFrom(kvs, logger))
		}
		wcancel()
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return ctx.Err()
}
