// Package manpages writes the man pages the Debian package installs: a
// page per command from the cobra tree, with the sections cobra does not
// make (exit status, environment, files, examples), and
// turku-storage.conf(5) from the Markdown configuration reference.
// `gen-man` in cmd calls it on the binary's own command tree.
package manpages
