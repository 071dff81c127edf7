package sshserver

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/turku-backup/turku-storage/apiclient"
	gossh "golang.org/x/crypto/ssh"
)

// minRSABits is the smallest RSA machine key accepted; ssh-keygen has made
// 2048-bit RSA keys by default since long before Turku existed.
const minRSABits = 2048

// allowedKeyTypes are the machine key types accepted. DSA is gone from
// OpenSSH; certificates are never machine keys.
var allowedKeyTypes = []string{
	gossh.KeyAlgoED25519,
	gossh.KeyAlgoSKED25519,
	gossh.KeyAlgoECDSA256,
	gossh.KeyAlgoECDSA384,
	gossh.KeyAlgoECDSA521,
	gossh.KeyAlgoSKECDSA256,
	gossh.KeyAlgoRSA,
}

// Machine is a machine allowed to log in: its UUID (the key of
// storage_update_config's map) and what the coordinator said about it, in
// apiclient's wire type as the server takes it (Options.Machines,
// SetMachines): nothing is converted between the API and the key store.
type Machine struct {
	UUID string
	Info apiclient.MachineInfo
}

// KeyStore maps machine public keys to machines. It is immutable: a refresh
// builds a new one and the Server swaps it in atomically.
type KeyStore struct {
	byFingerprint map[string]storedKey
}

type storedKey struct {
	machine Machine
	blob    []byte // wire form of the key, compared on lookup
}

// NewKeyStore builds a KeyStore from storage_update_config's machines
// (docs/protocol.md §3.1). A machine whose key is missing, unparsable, of a
// refused type, carries authorized_keys options, or is shared with another
// machine cannot log in; each is logged and skipped so that one bad entry
// never locks out the others.
func NewKeyStore(machines map[string]apiclient.MachineInfo, logger *slog.Logger) *KeyStore {
	ks := &KeyStore{byFingerprint: make(map[string]storedKey, len(machines))}
	shared := map[string][]string{} // fingerprint -> every UUID claiming it
	uuids := make([]string, 0, len(machines))
	for uuid := range machines {
		uuids = append(uuids, uuid)
	}
	slices.Sort(uuids) // deterministic logs
	for _, uuid := range uuids {
		info := machines[uuid]
		key, err := parseMachineKey(info.SSHPublicKey)
		if err != nil {
			logger.Warn("machine key refused", "machine", uuid, "unit", info.UnitName, "err", err)
			continue
		}
		fp := gossh.FingerprintSHA256(key)
		shared[fp] = append(shared[fp], uuid)
		ks.byFingerprint[fp] = storedKey{machine: Machine{UUID: uuid, Info: info}, blob: key.Marshal()}
	}
	for fp, owners := range shared {
		if len(owners) > 1 {
			logger.Error("machine key shared by several machines, refused for all",
				"machine", strings.Join(owners, ","), "fingerprint", fp)
			delete(ks.byFingerprint, fp)
		}
	}
	return ks
}

func parseMachineKey(s string) (gossh.PublicKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no ssh_public_key")
	}
	key, _, options, rest, err := gossh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("parse ssh_public_key: %w", err)
	}
	if len(options) > 0 {
		return nil, fmt.Errorf("ssh_public_key carries authorized_keys options %q", options)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("ssh_public_key holds more than one key")
	}
	if !slices.Contains(allowedKeyTypes, key.Type()) {
		return nil, fmt.Errorf("key type %s not accepted", key.Type())
	}
	if ck, ok := key.(gossh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, want at least %d", rk.N.BitLen(), minRSABits)
		}
	}
	return key, nil
}

// Lookup returns the machine whose key is key.
func (ks *KeyStore) Lookup(key gossh.PublicKey) (Machine, bool) {
	if _, isCert := key.(*gossh.Certificate); isCert {
		return Machine{}, false
	}
	sk, ok := ks.byFingerprint[gossh.FingerprintSHA256(key)]
	if !ok || !bytes.Equal(sk.blob, key.Marshal()) {
		return Machine{}, false
	}
	return sk.machine, true
}

// LookupFingerprint returns the machine whose key has the given SHA256
// fingerprint (gossh.FingerprintSHA256 form).
func (ks *KeyStore) LookupFingerprint(fp string) (Machine, bool) {
	sk, ok := ks.byFingerprint[fp]
	return sk.machine, ok
}

// Len reports how many machines can log in.
func (ks *KeyStore) Len() int { return len(ks.byFingerprint) }

// SetDeparted replaces the machines that were assigned here and no longer
// are, with their keys (kept a while by the caller): their keys are still
// refused, but the log names the machine once per connection instead of
// taking it for a stranger's key. A key also in the current set is that
// machine's only.
func (s *Server) SetDeparted(m map[string]apiclient.MachineInfo) {
	s.departed.Store(NewKeyStore(m, slog.New(slog.DiscardHandler)))
}
