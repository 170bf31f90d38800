package driver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const sshdPath = "/usr/sbin/sshd"

// sshFixture is a real OpenSSH sshd on a loopback port with generated keys.
type sshFixture struct {
	addr       string
	keyFile    string
	knownHosts string
	user       string
}

func genKey(t *testing.T, dir, name string) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, path
}

func startSSHD(t *testing.T) *sshFixture {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("sshd missing (run scripts/install-test-deps.sh): %v", err)
		}
		t.Skipf("sshd not installed: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	hostSigner, hostKey := genKey(t, dir, "host_ed25519")
	clientSigner, clientKey := genKey(t, dir, "client_ed25519")
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Privilege separation needs this directory when sshd runs as root.
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	// A free port in this package's loopback block.
	l, err := net.Listen("tcp", "127.0.40.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	host, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "sshd_config")
	cfg := fmt.Sprintf(`ListenAddress %s
Port %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
LogLevel ERROR
`, host, port, hostKey, auth, filepath.Join(dir, "sshd.pid"))
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", conf)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostSigner.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("sshd exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &sshFixture{addr: addr, keyFile: clientKey, knownHosts: kh, user: u.Username}
}

func TestSSHAgainstRealSSHD(t *testing.T) {
	fx := startSSHD(t)
	drv, err := NewSSH(SSHConfig{User: fx.user, KeyFile: fx.keyFile, KnownHostsFile: fx.knownHosts})
	if err != nil {
		t.Fatal(err)
	}
	tgt := Target{Kind: KindServer, Name: "srv-1", Site: "ansan", SSH: fx.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tests := []struct {
		name      string
		command   string
		wantErr   string
		permanent bool
	}{
		{"success", "true", "", false},
		{"expansion", "test ${name}@${site} = srv-1@ansan", "", false},
		{"exit status", "echo boom >&2; exit 3", "boom", false},
		{"empty", " ", "command is empty", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := drv.Do(ctx, tgt, "run", Params{"command": tc.command})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Do: got %v, want error containing %q", err, tc.wantErr)
			}
			if IsPermanent(err) != tc.permanent {
				t.Fatalf("IsPermanent(%v) = %v, want %v", err, IsPermanent(err), tc.permanent)
			}
		})
	}
}

func TestSSHRefusesUnknownHostKey(t *testing.T) {
	fx := startSSHD(t)
	// A known_hosts file holding a different key for the address.
	other, _ := genKey(t, t.TempDir(), "other")
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(fx.addr)}, other.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	drv, err := NewSSH(SSHConfig{User: fx.user, KeyFile: fx.keyFile, KnownHostsFile: kh})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = drv.Do(ctx, Target{Name: "srv-1", SSH: fx.addr}, "run", Params{"command": "true"})
	if err == nil || !IsPermanent(err) {
		t.Fatalf("Do with a wrong host key: got %v, want a permanent error", err)
	}
}

func TestNewSSHValidates(t *testing.T) {
	for _, cfg := range []SSHConfig{
		{},
		{User: "u"},
		{User: "u", KeyFile: "/nonexistent"},
	} {
		if _, err := NewSSH(cfg); err == nil {
			t.Errorf("NewSSH(%+v): want an error", cfg)
		}
	}
}
