package web

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// maxVerified bounds the cache of checked logins.
const maxVerified = 1024

// basicAuth checks HTTP basic authentication (RFC 7617) against bcrypt
// hashes. bcrypt is slow on purpose; a browser repeats its login with
// every request (the live section asks every few seconds), so a login
// once verified is remembered, by a hash of user, password and the
// user's bcrypt hash, for the server's life.
type basicAuth struct {
	users map[string][]byte
	// dummy is compared against when the user is unknown, so an unknown
	// user takes as long as a wrong password.
	dummy []byte

	mu       sync.Mutex // guards verified
	verified map[[32]byte]struct{}
}

func newBasicAuth(users map[string][]byte) *basicAuth {
	dummy, _ := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	return &basicAuth{users: users, dummy: dummy, verified: map[[32]byte]struct{}{}}
}

// check reports whether r carries a valid login.
func (a *basicAuth) check(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := a.users[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(pass))
		return false
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(user), []byte(pass), hash} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(part))))
		h.Write(part)
	}
	var key [32]byte
	copy(key[:], h.Sum(nil))
	a.mu.Lock()
	_, seen := a.verified[key]
	a.mu.Unlock()
	if seen {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerified {
		clear(a.verified)
	}
	a.verified[key] = struct{}{}
	a.mu.Unlock()
	return true
}
