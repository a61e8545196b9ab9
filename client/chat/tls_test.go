package chat_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/client/clienttest"
)

// TestRun_TLS chats through a TLS front (the load balancer that ends TLS
// before the gateways) with its authority given by --tls-ca.
func TestRun_TLS(t *testing.T) {
	s := startServer(t)
	f, err := clienttest.StartTLSFront(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, f.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	bob, _ := newUser(t, s, "bob")

	r := startChat(t, "--addr", f.Addr(), "--tls-ca", ca, "--user", "alice",
		"--password", "pw-secret", "--register", "--to", "bob")
	waitOutput(t, r.out, "* logged in as alice (id 2) at "+f.Addr(), 1)
	send(t, bob, userID(t, bob, "alice"), "over tls")
	waitOutput(t, r.out, "] bob #1: over tls", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRun_TLSErrors(t *testing.T) {
	s := startServer(t)
	f, err := clienttest.StartTLSFront(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr error
		wantOut string
	}{
		{
			name:    "--tls to a plain gateway",
			args:    []string{"--addr", s.Addr(), "--tls"},
			wantErr: chat.ErrUnreachable,
			wantOut: "does not speak TLS",
		},
		{
			name:    "a certificate of an authority the system does not trust",
			args:    []string{"--addr", f.Addr(), "--tls"},
			wantErr: chat.ErrUnreachable,
			wantOut: "certificate is not trusted",
		},
		{
			name:    "a name the certificate does not hold",
			args:    []string{"--addr", f.Addr(), "--tls-server-name", "other.test"},
			wantErr: chat.ErrUnreachable,
			wantOut: "certificate is not trusted",
		},
		{
			name:    "--tls-ca of a missing file",
			args:    []string{"--addr", f.Addr(), "--tls-ca", filepath.Join(t.TempDir(), "x")},
			wantErr: chat.ErrUsage,
			wantOut: "--tls-ca",
		},
		{
			name:    "--tls-ca of a file without a certificate",
			args:    []string{"--addr", f.Addr(), "--tls-ca", notPEM},
			wantErr: chat.ErrUsage,
			wantOut: "no PEM certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, "--user", "bob", "--password", "pw-secret")
			r := startChat(t, args...)
			err := r.wait(t)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v; output:\n%s", err, tt.wantErr, r.out.String())
			}
			if !strings.Contains(r.out.String()+err.Error(), tt.wantOut) {
				t.Fatalf("output lacks %q:\n%s\nerr: %v", tt.wantOut, r.out.String(), err)
			}
		})
	}
}
