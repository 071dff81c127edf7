package transfer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/backup"
)

// The stream (docs/operations.md, "The transfer stream") is a POSIX
// pax tar archive followed by one trailer line:
//
//	turku-transfer.json          header: format, version, machine, names
//	UUID/                        the machine directory
//	UUID/etc.snapshots/...       everything below it, depth first
//	<two zero blocks>            tar's end of archive
//	turku-transfer sha256 HEX\n  SHA-256 of every byte before this line
const (
	headerName    = "turku-transfer.json"
	formatName    = "turku-storage-transfer"
	formatVersion = 1
	trailerPrefix = "turku-transfer sha256 "
	// trailerLen is the trailer line's length: prefix, 64 hex digits,
	// newline.
	trailerLen = len(trailerPrefix) + 64 + 1
	// maxHeaderSize bounds the header entry a receiver reads into memory.
	maxHeaderSize = 64 << 10
)

// Header is the stream's first entry.
type Header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Machine is the machine's UUID; every other entry lies under it.
	Machine string `json:"machine"`
	// Names are the name links (ENV-SERVICE-UNIT) that pointed at the
	// machine on the sending unit.
	Names []string `json:"names"`
	// Storage is the sending unit's name, for the log.
	Storage string    `json:"storage,omitempty"`
	Created time.Time `json:"created"`
}

func (h Header) check() error {
	if h.Format != formatName {
		return fmt.Errorf("not a turku-storage transfer stream (format %q)", h.Format)
	}
	if h.Version != formatVersion {
		return fmt.Errorf("transfer stream version %d: this turku-storage reads version %d", h.Version, formatVersion)
	}
	if !backup.IsUUID(h.Machine) {
		return fmt.Errorf("transfer stream names machine %q, not a UUID", h.Machine)
	}
	for _, n := range h.Names {
		if err := checkComponent(n); err != nil {
			return fmt.Errorf("machine name %q: %w", n, err)
		}
	}
	return nil
}

func trailer(sum []byte) []byte {
	return []byte(trailerPrefix + hex.EncodeToString(sum) + "\n")
}

// ErrCorrupt is returned by Receive for a stream that is truncated, or
// whose bytes do not match its checksum or its own structure.
var ErrCorrupt = errors.New("transfer stream is truncated or corrupt")

// checkComponent returns an error unless s is one usable file name.
func checkComponent(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a file name", s)
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Errorf("%q contains '/' or NUL", s)
	case len(s) > 255:
		return fmt.Errorf("%.40q... is longer than 255 bytes", s)
	}
	return nil
}

// splitName checks an entry's name (or a hard link's target) and
// returns its components: relative, at least "UUID/x", no empty, "." or
// ".." component, and under the machine's directory.
func splitName(name, machine string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%q is an absolute path", name)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if err := checkComponent(p); err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
	}
	if parts[0] != machine {
		return nil, fmt.Errorf("%q lies outside the machine directory %s", name, machine)
	}
	return parts, nil
}
