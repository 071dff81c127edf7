// Package sshserver is the storage unit's embedded SSH listener (docs/protocol.md
// §5), built on gliderlabs/ssh with every default replaced: public-key
// authentication only, against the machine keys the coordinator lists;
// reverse forwards are recorded, never bound; the one session per connection
// reads the agent's request and either hands a private tunnel endpoint to a
// Puller (checkin) or opens the restore port (restore). Host keys, limits
// modelled on OpenSSH's sshd (admission per source before the banner,
// penalties, per-machine session limits) and the algorithm choice live
// here too.
package sshserver
