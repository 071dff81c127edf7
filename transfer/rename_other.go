//go:build !linux

package transfer

import (
	"fmt"
	"io/fs"
	"os"
)

// renameNoReplace renames old to new, failing if new exists (checked
// first: without renameat2 there is a window, held shut here only by
// the machine's lock).
func renameNoReplace(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return fmt.Errorf("%s: %w", new, fs.ErrExist)
	}
	return os.Rename(old, new)
}
