package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// ErrTLS marks a TLS configuration problem (missing, unreadable or
// mismatched files); test with errors.Is.
var ErrTLS = errors.New("tls configuration")

// TLSFiles names PEM files for one side of a TLS connection. The zero value
// means plain TCP. CertFile and KeyFile go together; CAFile alone gives a
// client that verifies the server but presents no certificate. When CAFile
// is set on a listening side (a member's client or peer URL), clients must
// present a certificate signed by it.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// Enabled reports whether any file is set.
func (t TLSFiles) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Check loads every named file and returns an error wrapping ErrTLS that
// names the file and the problem; what names the connection ("client TLS").
func (t TLSFiles) Check(what string) error {
	if !t.Enabled() {
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s: %w: certFile and keyFile must be set together (certFile=%q keyFile=%q)", what, ErrTLS, t.CertFile, t.KeyFile)
	}
	if t.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return fmt.Errorf("%s: %w: load key pair %s, %s: %v", what, ErrTLS, t.CertFile, t.KeyFile, err)
		}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("%s: %w: read CA file: %v", what, ErrTLS, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: %w: CA file %s holds no PEM certificate", what, ErrTLS, t.CAFile)
		}
	}
	return nil
}

// info converts to etcd's TLSInfo. With a CA, peers and clients must
// present certificates signed by it.
func (t TLSFiles) info() transport.TLSInfo {
	return transport.TLSInfo{
		CertFile:       t.CertFile,
		KeyFile:        t.KeyFile,
		TrustedCAFile:  t.CAFile,
		ClientCertAuth: t.CAFile != "",
	}
}

// ClientConfig returns a *tls.Config for a client, or nil when no file is
// set.
func (t TLSFiles) ClientConfig() (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	if err := t.Check("client TLS"); err != nil {
		return nil, err
	}
	c, err := t.info().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w: %v", ErrTLS, err)
	}
	return c, nil
}
