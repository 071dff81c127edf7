//go:build !linux

package agenttest

import "os/exec"

// dieWithParent has no portable equivalent; t.Cleanup stops children.
func dieWithParent(*exec.Cmd) {}
