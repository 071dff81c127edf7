package sshserver

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/baseline"
	gossh "golang.org/x/crypto/ssh"
)

// benchMachines is a key set the size of a large site: n machines with
// ed25519 keys, as storage_update_config returns them, plus the same keys
// as the lines of an OpenSSH authorized_keys file (forced command and
// options included), in the same order.
func benchMachines(b *testing.B, n int) (map[string]apiclient.MachineInfo, []gossh.PublicKey, []string) {
	b.Helper()
	machines := make(map[string]apiclient.MachineInfo, n)
	keys := make([]gossh.PublicKey, n)
	lines := make([]string, n)
	for i := range n {
		s := agenttest.NewSigner(b)
		uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		machines[uuid] = apiclient.MachineInfo{UnitName: fmt.Sprintf("unit%05d", i), SSHPublicKey: AuthorizedKey(s)}
		keys[i] = s.PublicKey()
		lines[i] = fmt.Sprintf(`command="turku-storage ping %s",no-pty,no-agent-forwarding,no-X11-forwarding,no-user-rc %s`, uuid, AuthorizedKey(s))
	}
	return machines, keys, lines
}

// BenchmarkKeyStoreLookup: finding the machine of the key an agent signs
// with, among 10,000 (the key listed last, as bench/ does for OpenSSH).
// Baselines in the same run: a linear scan over the parsed keys, and what
// sshd does per authentication, reading authorized_keys and parsing each
// line until the key matches.
func BenchmarkKeyStoreLookup(b *testing.B) {
	const n = 10000
	machines, keys, lines := benchMachines(b, n)
	ks := NewKeyStore(machines, slog.New(slog.DiscardHandler))
	want := keys[n-1]
	blobs := make([][]byte, n)
	for i, k := range keys {
		blobs[i] = k.Marshal()
	}
	authorizedKeys := strings.Join(lines, "\n") + "\n"

	linear := baseline.NsPerOp(func() {
		w := want.Marshal()
		for _, blob := range blobs {
			if bytes.Equal(blob, w) {
				return
			}
		}
		b.Fatal("linear scan: key not found")
	})
	sshd := baseline.NsPerOp(func() {
		w := want.Marshal()
		sc := bufio.NewScanner(strings.NewReader(authorizedKeys))
		for sc.Scan() {
			k, _, _, _, err := gossh.ParseAuthorizedKey(sc.Bytes())
			if err == nil && bytes.Equal(k.Marshal(), w) {
				return
			}
		}
		b.Fatal("authorized_keys: key not found")
	})

	for b.Loop() {
		if _, ok := ks.Lookup(want); !ok {
			b.Fatal("key not found")
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(linear, "linear-scan-ns/op")
	b.ReportMetric(sshd, "authorized_keys-parse-ns/op")
	b.ReportMetric(linear/perOp, "x-faster-than-scan")
	b.ReportMetric(sshd/perOp, "x-faster-than-parse")
}

// BenchmarkNewKeyStore: what one key refresh of 10,000 machines costs
// (every update_config_interval and on SIGHUP).
func BenchmarkNewKeyStore(b *testing.B) {
	machines, _, _ := benchMachines(b, 10000)
	logger := slog.New(slog.DiscardHandler)
	for b.Loop() {
		if ks := NewKeyStore(machines, logger); ks.Len() != len(machines) {
			b.Fatalf("got %d keys, want %d", ks.Len(), len(machines))
		}
	}
}
