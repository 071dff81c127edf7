package coordinator

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestSecrets(t *testing.T) {
	t.Parallel()
	s := newSecrets(testArgon2)
	h, err := s.hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "argon2$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q: want Django's argon2 encoding with the parameters", h)
	}
	h2, err := s.hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Error("two hashes of one secret are equal: no salt?")
	}

	// A fresh verifier (no cache) checks the hash itself.
	fresh := newSecrets(testArgon2)
	tests := []struct {
		name   string
		secret string
		hash   string
		want   bool
	}{
		{"match", "correct horse", h, true},
		{"wrong", "correct horsE", h, false},
		{"empty", "", h, false},
		{"other hash", "correct horse", h2, true},
		{"not argon2", "x", "pbkdf2_sha256$260000$salt$hash", false},
		{"garbage", "x", "argon2$argon2id$v=19$m=64,t=1,p=1$!!$!!", false},
		{"absurd memory", "x", "argon2$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", false},
		{"unusable", "x", "!unusable", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fresh.verify(tc.secret, tc.hash); got != tc.want {
				t.Errorf("verify(%q) = %v, want %v", tc.secret, got, tc.want)
			}
		})
	}

	// Only successes are cached, keyed by hash and secret.
	if _, ok := fresh.ok[verifyKey{hash: h, secret: sha256Of("correct horse")}]; !ok {
		t.Error("successful verification not cached")
	}
	if len(fresh.ok) != 2 {
		t.Errorf("cache has %d entries, want 2 (the two successes)", len(fresh.ok))
	}
}

func TestDjangoArgon2Compat(t *testing.T) {
	t.Parallel()
	// Made by Django 3.2's Argon2PasswordHasher (argon2-cffi), with costs
	// lowered to t=1, m=64, p=1 to keep the test fast: secret "lètmein",
	// salt "ThisIsASalt", Django's 16-byte hash. (Django accepts our hashes
	// in turn: its check_password verified one made by hash with
	// DefaultArgon2 when this was written.)
	const django = "argon2$argon2id$v=19$m=64,t=1,p=1$VGhpc0lzQVNhbHQ$uPvfHMkiAE5lQ0U/RB5Ycg"
	s := newSecrets(testArgon2)
	if !s.verify("lètmein", django) {
		t.Error("Django hash not accepted")
	}
	if s.verify("letmein", django) {
		t.Error("wrong secret accepted against a Django hash")
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }
