// Package atomicfile replaces files so that a reader, and the file system
// after a crash, sees either the old content or the new, never a mix or an
// empty file: the host key, the machine cache, the spooled reports, the
// snapshots' .json files and the coordinator's export all go through it.
// github.com/google/renameio does the temporary file, fsync and rename; this
// package adds what every caller here needs as well: the directory fsync'd
// after the rename, the mode given (not the umask's or an old file's), and
// a create-only variant.
package atomicfile
