//go:build !linux

package sshserver

// readAuthed is c.Conn.Read; see rawio_linux.go.
func (c *conn) readAuthed(p []byte) (int, error) { return c.Conn.Read(p) }

// writeAuthed is c.Conn.Write; see rawio_linux.go.
func (c *conn) writeAuthed(p []byte) (int, error) { return c.Conn.Write(p) }
