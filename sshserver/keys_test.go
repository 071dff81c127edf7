package sshserver

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testlog"
	gossh "golang.org/x/crypto/ssh"
)

// rsaSigner returns a signer of a new RSA key of bits.
func rsaSigner(t *testing.T, bits int) gossh.Signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewKeyStore(t *testing.T) {
	t.Parallel()
	good, other, shared := agenttest.NewSigner(t), agenttest.NewSigner(t), agenttest.NewSigner(t)
	small, okRSA := rsaSigner(t, 1024), rsaSigner(t, 2048)
	machines := map[string]apiclient.MachineInfo{
		"good":       {UnitName: "web1", SSHPublicKey: AuthorizedKey(good) + " root@web1"},
		"rsa":        {SSHPublicKey: AuthorizedKey(okRSA)},
		"other":      {SSHPublicKey: "  " + AuthorizedKey(other) + "\n"},
		"empty":      {},
		"garbage":    {SSHPublicKey: "ssh-ed25519 AAAAnotbase64"},
		"options":    {SSHPublicKey: `command="/bin/sh" ` + AuthorizedKey(agenttest.NewSigner(t))},
		"two keys":   {SSHPublicKey: AuthorizedKey(agenttest.NewSigner(t)) + "\n" + AuthorizedKey(agenttest.NewSigner(t))},
		"small rsa":  {SSHPublicKey: AuthorizedKey(small)},
		"dsa":        {SSHPublicKey: "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPDaFDSjLZ8bPS+DKXQ0n2Cw8SR4Rqec8CEhJHDbLz3wl/lFL8d1WvoBaxLWu6AcMzHIT3ixAxjx0wHtvfOgqQ7Bo+Ln5v1vA0HZVuwRDdG7zeCZcfsyf3X+Ra6JtYZW7nn/Tl1akt4Su1EWwtMZA7MiIRKqnzzgGtTM+M67+vTH"},
		"cert":       {SSHPublicKey: "ssh-ed25519-cert-v01@openssh.com AAAA"},
		"shared one": {SSHPublicKey: AuthorizedKey(shared)},
		"shared two": {SSHPublicKey: AuthorizedKey(shared)},
	}
	ks := NewKeyStore(machines, testlog.New(t))
	if got, want := ks.Len(), 3; got != want {
		t.Errorf("got %d usable keys, want %d", got, want)
	}
	tests := []struct {
		name string
		key  gossh.PublicKey
		want string // "" = refused
	}{
		{name: "ed25519", key: good.PublicKey(), want: "good"},
		{name: "surrounding space", key: other.PublicKey(), want: "other"},
		{name: "rsa 2048", key: okRSA.PublicKey(), want: "rsa"},
		{name: "rsa 1024", key: small.PublicKey()},
		{name: "shared between machines", key: shared.PublicKey()},
		{name: "unknown", key: agenttest.NewSigner(t).PublicKey()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := ks.Lookup(tt.key)
			if got := map[bool]string{true: m.UUID}[ok]; got != tt.want {
				t.Errorf("Lookup: got %q, want %q", got, tt.want)
			}
			m, ok = ks.LookupFingerprint(gossh.FingerprintSHA256(tt.key))
			if got := map[bool]string{true: m.UUID}[ok]; got != tt.want {
				t.Errorf("LookupFingerprint: got %q, want %q", got, tt.want)
			}
		})
	}
	m, _ := ks.Lookup(good.PublicKey())
	if diff := cmp.Diff(Machine{UUID: "good", Info: machines["good"]}, m); diff != "" {
		t.Errorf("machine (-want +got):\n%s", diff)
	}
}

// TestLookupRefusesCertificate: a certificate over a machine's key is not
// that machine's key.
func TestLookupRefusesCertificate(t *testing.T) {
	t.Parallel()
	machineKey := agenttest.NewSigner(t)
	ks := NewKeyStore(map[string]apiclient.MachineInfo{"m": {SSHPublicKey: AuthorizedKey(machineKey)}}, testlog.New(t))
	cert := &gossh.Certificate{Key: machineKey.PublicKey(), CertType: gossh.UserCert, ValidPrincipals: []string{testUser}, ValidBefore: gossh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, agenttest.NewSigner(t)); err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.Lookup(cert); ok {
		t.Error("certificate accepted as the machine key")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	host := agenttest.NewSigner(t)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "no host key: never a throwaway one", opts: Options{User: "u", Puller: &fakePuller{}}, wantErr: "no host key"},
		{name: "no user", opts: Options{HostSigners: []gossh.Signer{host}, Puller: &fakePuller{}}, wantErr: "no ssh_ping_user"},
		{name: "no puller", opts: Options{HostSigners: []gossh.Signer{host}, User: "u"}, wantErr: "no Puller"},
		{name: "enough", opts: Options{HostSigners: []gossh.Signer{host}, User: "u", Puller: &fakePuller{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Addr() != nil {
				t.Errorf("Addr before Serve: %v", s.Addr())
			}
			if got := s.opts.LoginGraceTime; got != DefaultLoginGraceTime {
				t.Errorf("LoginGraceTime default %v", got)
			}
		})
	}
}
