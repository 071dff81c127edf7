package coordinator

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters for new secret hashes.
// Existing hashes are verified with the parameters recorded in them.
type Argon2Params struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 is used when Options.Argon2 is zero: one pass over 64 MiB
// with two lanes. That is above the OWASP minimums for argon2id (e.g.
// m=46 MiB, t=1, p=1) and costs roughly 50–100 ms on a small storage host,
// and the verification cache below means an agent pays it once per process
// lifetime rather than once per ping. turku-api (Django) defaults to t=2,
// m=100 MiB, p=8, which would double the memory per cold check for little
// gain against secrets that are 30 random characters.
var DefaultArgon2 = Argon2Params{Time: 1, MemoryKiB: 64 * 1024, Threads: 2}

const (
	saltLen = 16
	keyLen  = 32 // Django reads the length from the hash

	// maxVerifyMemoryKiB refuses absurd parameters found in a stored hash.
	maxVerifyMemoryKiB = 1 << 20 // 1 GiB

	// maxCached bounds the verification cache; one entry per secret in use
	// (machines, storage units, registration auths) is all it needs.
	maxCached = 10000

	// hashConcurrency bounds simultaneous argon2 computations, so a burst of
	// cold or wrong secrets costs at most this many times MemoryKiB.
	hashConcurrency = 2
)

// hashPrefix is Django's encoding: "argon2" + the argon2 PHC string, so that
// an exported database keeps working under turku-api with the same secrets.
const hashPrefix = "argon2$"

// secrets hashes and verifies secrets.
//
// Verifying an argon2id hash is deliberately slow and memory-hungry, and
// every agent and storage call carries a secret: a busy storage unit would
// spend most of its CPU (and hundreds of MiB) re-deriving the same keys. So
// a successful verification is remembered, keyed by the stored hash and the
// SHA-256 of the secret that matched it. A later call with the same secret
// against the same hash is then one hash lookup. The cache holds no secret,
// only digests of secrets that are already random and high-entropy; it
// never remembers failures (a wrong secret always pays the full cost, which
// is bounded by hashConcurrency); and an entry stops matching as soon as the
// stored hash changes (rotation, re-registration).
type secrets struct {
	params Argon2Params
	sem    chan struct{}
	// none is a hash with params that no secret matches (its key is
	// random, not derived): a login for a name that does not exist is
	// verified against it, so it costs what a wrong secret for an
	// existing one costs.
	none string

	mu sync.Mutex
	ok map[verifyKey]struct{} // guarded by mu

	// derived, when set (tests), is called after each key derivation of
	// a verification with the parameters it used.
	derived func(time, memoryKiB uint32, threads uint8)
}

type verifyKey struct {
	hash   string
	secret [sha256.Size]byte
}

func newSecrets(p Argon2Params) *secrets {
	if p == (Argon2Params{}) {
		p = DefaultArgon2
	}
	return &secrets{
		params: p,
		sem:    make(chan struct{}, hashConcurrency),
		ok:     make(map[verifyKey]struct{}),
		none:   unmatchableHash(p),
	}
}

// unmatchableHash is a hash in Django's format with parameters p whose
// key is random bytes rather than derived from any secret: finding a
// secret that matches it means finding a preimage of argon2id.
func unmatchableHash(p Argon2Params) string {
	salt, key := make([]byte, saltLen), make([]byte, keyLen)
	rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	rand.Read(key)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sargon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", hashPrefix, argon2.Version,
		p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// hash returns a new salted argon2id hash of secret in Django's format:
// argon2$argon2id$v=19$m=M,t=T,p=P$SALT$KEY (unpadded standard base64).
func (s *secrets) hash(secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	p := s.params
	s.sem <- struct{}{}
	key := argon2.IDKey([]byte(secret), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	<-s.sem
	b64 := base64.RawStdEncoding
	encoded := fmt.Sprintf("%sargon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", hashPrefix, argon2.Version,
		p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
	s.remember(encoded, secret)
	return encoded, nil
}

// verify reports whether secret matches the encoded hash, waiting for a
// verification slot if all are taken. It is for the coordinator's own
// start-up; requests use tryVerify.
func (s *secrets) verify(secret, encoded string) bool {
	ok, _ := s.check(secret, encoded, true)
	return ok
}

// errSlotsFull is tryVerify's answer when the secret is not in the cache
// and every argon2 slot is busy.
var errSlotsFull = errors.New("all secret verification slots are busy")

// tryVerify reports whether secret matches the encoded hash, like verify,
// but fails at once with errSlotsFull instead of waiting for a slot: a
// burst of wrong secrets then costs its senders a retry, not the real
// agents queued behind them.
func (s *secrets) tryVerify(secret, encoded string) (bool, error) {
	return s.check(secret, encoded, false)
}

// tryVerifyNone does for secret the work tryVerify does for a wrong
// secret against a stored hash of the current parameters, for a login
// whose name does not exist: it returns errSlotsFull when every slot is
// busy, as tryVerify would, and nil otherwise (the secret never matches).
func (s *secrets) tryVerifyNone(secret string) error {
	_, err := s.check(secret, s.none, false)
	return err
}

func (s *secrets) check(secret, encoded string, wait bool) (bool, error) {
	k := verifyKey{hash: encoded, secret: sha256.Sum256([]byte(secret))}
	s.mu.Lock()
	_, hit := s.ok[k]
	s.mu.Unlock()
	if hit {
		return true, nil
	}
	ph, err := parseHash(encoded)
	if err != nil {
		return false, nil
	}
	if wait {
		s.sem <- struct{}{}
	} else {
		select {
		case s.sem <- struct{}{}:
		default:
			return false, errSlotsFull
		}
	}
	var key []byte
	if ph.variant == "argon2id" {
		key = argon2.IDKey([]byte(secret), ph.salt, ph.time, ph.memory, ph.threads, uint32(len(ph.key)))
	} else {
		key = argon2.Key([]byte(secret), ph.salt, ph.time, ph.memory, ph.threads, uint32(len(ph.key)))
	}
	<-s.sem
	if s.derived != nil {
		s.derived(ph.time, ph.memory, ph.threads)
	}
	if subtle.ConstantTimeCompare(key, ph.key) != 1 {
		return false, nil
	}
	s.remember(encoded, secret)
	return true, nil
}

func (s *secrets) remember(encoded, secret string) {
	k := verifyKey{hash: encoded, secret: sha256.Sum256([]byte(secret))}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ok) >= maxCached {
		for old := range s.ok { // evict an arbitrary entry
			delete(s.ok, old)
			break
		}
	}
	s.ok[k] = struct{}{}
}

type parsedHash struct {
	variant      string
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

// parseHash reads Django's argon2 encoding (argon2id, or argon2i as older
// Django versions wrote it).
func parseHash(encoded string) (parsedHash, error) {
	var ph parsedHash
	rest, ok := strings.CutPrefix(encoded, hashPrefix)
	if !ok {
		return ph, errors.New("not an argon2 hash")
	}
	f := strings.Split(rest, "$")
	if len(f) != 5 {
		return ph, errors.New("malformed argon2 hash")
	}
	ph.variant = f[0]
	if ph.variant != "argon2id" && ph.variant != "argon2i" {
		return ph, fmt.Errorf("unsupported argon2 variant %q", ph.variant)
	}
	if f[1] != "v="+strconv.Itoa(argon2.Version) {
		return ph, fmt.Errorf("unsupported argon2 version %q", f[1])
	}
	for _, kv := range strings.Split(f[2], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return ph, fmt.Errorf("argon2 parameter %q: %w", kv, err)
		}
		switch k {
		case "m":
			ph.memory = uint32(n)
		case "t":
			ph.time = uint32(n)
		case "p":
			if n > 255 {
				return ph, fmt.Errorf("argon2 parallelism %d too large", n)
			}
			ph.threads = uint8(n)
		default:
			return ph, fmt.Errorf("unknown argon2 parameter %q", k)
		}
	}
	if ph.time == 0 || ph.threads == 0 || ph.memory < 8*uint32(ph.threads) || ph.memory > maxVerifyMemoryKiB {
		return ph, errors.New("argon2 parameters out of range")
	}
	var err error
	b64 := base64.RawStdEncoding
	if ph.salt, err = b64.DecodeString(f[3]); err != nil {
		return ph, fmt.Errorf("argon2 salt: %w", err)
	}
	if ph.key, err = b64.DecodeString(f[4]); err != nil {
		return ph, fmt.Errorf("argon2 key: %w", err)
	}
	if len(ph.key) < 4 {
		return ph, errors.New("argon2 key too short")
	}
	return ph, nil
}

// randomSecret returns n characters from [A-Za-z0-9], like Django's
// get_random_string, which turku_auth_create uses with n=30.
func randomSecret(n int) (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 64)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("read random: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: reject above it so every character is equally likely.
			if b < 248 && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// newUUID returns a random (version 4) UUID in canonical form.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b), nil
}
