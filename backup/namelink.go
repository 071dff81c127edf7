package backup

import "sync"

// MachineLinkName returns the VAR_DIR/machines name link of a machine,
// "<env>-<service>-<unit>" (empty environment and service left out), or an
// error if the names cannot make one file name.
func MachineLinkName(env, service, unit string) (string, error) {
	return machineLinkName(env, service, unit)
}

// nameConflicts remembers the name link conflicts already logged, so that
// an intruder checking in every few minutes is logged once.
type nameConflicts struct {
	mu     sync.Mutex
	logged map[string]string // link name -> machine that claimed it
}

// first reports whether uuid's claim on name is new.
func (n *nameConflicts) first(name, uuid string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.logged[name] == uuid {
		return false
	}
	if n.logged == nil {
		n.logged = map[string]string{}
	}
	n.logged[name] = uuid
	return true
}

// isRegistered reports whether uuid is still registered here; without a
// way to tell, every machine is.
func (e *Engine) isRegistered(uuid string) bool {
	return e.registered == nil || e.registered(uuid)
}
