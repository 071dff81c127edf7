// Package tunnel carries TCP connections made on the storage unit to the
// agent's rsync daemon through the agent's reverse forward: each accepted
// connection becomes a "forwarded-tcpip" channel (RFC 4254 §7.2) on the
// agent's SSH connection. Checkin endpoints listen on a private loopback
// port chosen by the kernel, so two agents that picked the same PORT never
// meet; restore endpoints listen on 127.0.0.1:PORT for the operator, PORT
// within the tunnel port range. Both admit only local connections of our
// own user (and, for restore, root), never one of this process's own.
package tunnel
