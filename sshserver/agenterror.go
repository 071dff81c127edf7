package sshserver

import "errors"

// agentError is a cause of a session's end that the agent may read: its
// text follows "Session ended: " on the agent's stderr. Any other cause
// (a context's, a library's, one wrapping a path or an address) stays in
// our log, and the agent reads errInternal's text instead. The server's
// own causes (server.go) are declared with newAgentError; Shutdown's and
// Serve's callers declare theirs by passing them (shutdownCause).
type agentError struct{ err error }

func (e *agentError) Error() string { return e.err.Error() }
func (e *agentError) Unwrap() error { return e.err }

// newAgentError declares a cause the agent reads as msg.
func newAgentError(msg string) error { return &agentError{errors.New(msg)} }

// agentMessage is what the agent reads of cause: the text of the
// outermost agentError in its chain, else errInternal's.
func agentMessage(cause error) string {
	var ae *agentError
	if errors.As(cause, &ae) {
		return ae.Error()
	}
	return errInternal.Error()
}
