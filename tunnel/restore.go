package tunnel

import "errors"

// Why Restore refused a port; the agent is told which (docs/protocol.md
// §3.2: the agent prints restore instructions naming the port it asked
// for, so no other port will do).
var (
	// ErrRestorePortPrivileged: ports below 1024 are for system services,
	// which a root storage unit must not shadow on 127.0.0.1.
	ErrRestorePortPrivileged = errors.New("restore port is below 1024")
	// ErrRestorePortTaken: something else listens on the port. Falling
	// back to another port would leave the operator, following the
	// agent's instructions, talking to whoever holds the asked one.
	ErrRestorePortTaken = errors.New("restore port is in use on the storage unit")
)

// minRestorePort is the lowest port a restore may listen on.
const minRestorePort = 1024
