package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssueVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ca, created, err := LoadOrCreateCA(dir, "test CA", time.Hour)
	if err != nil || !created {
		t.Fatalf("create CA: %v %v", created, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode: %v %v", fi.Mode(), err)
	}
	certPath, keyPath, err := ca.Issue(dir, "fb-a", []string{"127.0.10.1", "fb-a.example.com", "127.0.10.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	again, created, err := LoadOrCreateCA(dir, "test CA", time.Hour)
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("reload CA: created %v, %v", created, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(again.Cert)
	for _, c := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"127.0.10.1", x509.ExtKeyUsageServerAuth}, {"fb-a.example.com", x509.ExtKeyUsageServerAuth}, {"fb-a.example.com", x509.ExtKeyUsageClientAuth}} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: c.name, KeyUsages: []x509.ExtKeyUsage{c.usage}}); err != nil {
			t.Errorf("verify %s: %v", c.name, err)
		}
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.10.1")) {
		t.Errorf("IP SANs %v, want one 127.0.10.1", leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example.com"}); err == nil {
		t.Error("certificate verified for a host it does not name")
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode: %v %v", fi.Mode(), err)
	}
}
