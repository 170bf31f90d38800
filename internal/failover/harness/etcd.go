package harness

import (
	"fmt"
	"net/url"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Etcd is a single embedded etcd member with a client.
type Etcd struct {
	Server *embed.Etcd
	Client *clientv3.Client
	dir    string
}

// StartEtcd starts an embedded etcd member on 127.0.0.1 free ports, in a
// temporary directory, and connects a client to it.
func StartEtcd() (_ *Etcd, err error) {
	dir, err := os.MkdirTemp("", "firebreak-etcd-")
	if err != nil {
		return nil, err
	}
	e := &Etcd{dir: dir}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	cport, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	pport, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", cport))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", pport))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	e.Server = srv
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("etcd not ready after 30s")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	e.Client = cli
	return e, nil
}

// Close stops the client and the member and removes the directory. It is
// idempotent.
func (e *Etcd) Close() {
	if e.Client != nil {
		_ = e.Client.Close()
		e.Client = nil
	}
	if e.Server != nil {
		e.Server.Close()
		e.Server = nil
	}
	_ = os.RemoveAll(e.dir)
}
