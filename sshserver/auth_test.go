package sshserver

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	// Five refusals from one address would earn it a penalty
	// (admission_test.go); not what this test is about.
	ts := startServer(t, func(o *Options) { o.Penalties.Min = time.Hour })
	tests := []struct {
		name    string
		user    string
		auth    []gossh.AuthMethod
		wantErr bool
	}{
		{name: "machine key", user: testUser, auth: []gossh.AuthMethod{gossh.PublicKeys(ts.keys[uuidA])}},
		{name: "wrong user", user: "root", auth: []gossh.AuthMethod{gossh.PublicKeys(ts.keys[uuidA])}, wantErr: true},
		{name: "unknown key", user: testUser, auth: []gossh.AuthMethod{gossh.PublicKeys(agenttest.NewSigner(t))}, wantErr: true},
		{name: "host key is no machine key", user: testUser, auth: []gossh.AuthMethod{gossh.PublicKeys(ts.hostKey)}, wantErr: true},
		{name: "password", user: testUser, auth: []gossh.AuthMethod{gossh.Password("secret")}, wantErr: true},
		{name: "keyboard-interactive", user: testUser, auth: []gossh.AuthMethod{
			gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil }),
		}, wantErr: true},
		{name: "none", user: testUser, auth: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(tt.user, tt.auth...))
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("logged in, want refused")
				}
				if !strings.Contains(err.Error(), "unable to authenticate") {
					t.Errorf("got %v, want an authentication failure", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}

// TestAuthOffersPublicKeyOnly: the methods list after "none" is publickey
// alone, so clients never prompt for passwords.
func TestAuthOffersPublicKeyOnly(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	var offered []string
	cfg := ts.clientConfig(testUser)
	cfg.AuthCallback = func(ac *gossh.ClientAuthContext) (gossh.AuthMethod, error) {
		offered = ac.AllowedMethods
		return nil, errors.New("stop")
	}
	if c, err := gossh.Dial("tcp", ts.addr, cfg); err == nil {
		c.Close()
		t.Fatal("logged in with no credentials")
	}
	if len(offered) != 1 || offered[0] != "publickey" {
		t.Errorf("server offers %q, want [publickey]", offered)
	}
}

// TestIdentityIsTheSigningKey is the CVE-2024-45337 shape: the client gets
// machine V's key accepted by a query without ever signing with it, fails
// with an unknown key, then signs with machine A's key. The session must
// be A's and nothing may be attributed to V.
func TestIdentityIsTheSigningKey(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ts.puller.pull = func(ctx context.Context, req PullRequest) error { return nil }
	var accepted int
	steps := []gossh.AuthMethod{
		gossh.PublicKeys(victimQuery{s: ts.keys[uuidV], accepted: &accepted}),
		gossh.PublicKeys(agenttest.NewSigner(t)),
		gossh.PublicKeys(ts.keys[uuidA]),
	}
	cfg := ts.clientConfig(testUser)
	cfg.AuthCallback = func(ac *gossh.ClientAuthContext) (gossh.AuthMethod, error) {
		if len(steps) == 0 {
			return nil, errors.New("out of steps")
		}
		next := steps[0]
		steps = steps[1:]
		return next, nil
	}
	c, err := gossh.Dial("tcp", ts.addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if len(steps) != 0 {
		t.Fatalf("logged in before signing with A (%d steps left)", len(steps))
	}
	if accepted != 1 {
		t.Fatalf("server accepted V's key in a query %d times, want 1: the test lost its point", accepted)
	}
	if ok, err := forwardRequest(c, "localhost", 51234); !ok || err != nil {
		t.Fatalf("tcpip-forward: %v %v", ok, err)
	}
	code, stderr := runSession(t, c, checkinRequest(51234))
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if got := ts.puller.machines(); len(got) != 1 || got[0] != uuidA {
		t.Errorf("checkin ran for %v, want [%s]", got, uuidA)
	}
}

// victimQuery wraps machine V's signer so that only its public half is
// ever used.
// The client calls Sign only after the server accepted the query.
type victimQuery struct {
	s        gossh.Signer
	accepted *int
}

func (v victimQuery) PublicKey() gossh.PublicKey { return v.s.PublicKey() }
func (v victimQuery) Sign(_ io.Reader, _ []byte) (*gossh.Signature, error) {
	*v.accepted++
	return nil, errors.New("query only")
}
