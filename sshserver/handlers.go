package sshserver

import (
	glssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// requestFunc handles one global request of the connection c.
type requestFunc func(c *conn, req *gossh.Request) (bool, []byte)

// channelFunc handles one new channel of the connection c.
type channelFunc func(c *conn, sconn *gossh.ServerConn, nc gossh.NewChannel)

// request gives a global-request handler the bookkeeping every handler
// needs, as middleware: the request counts as the connection's work
// (Shutdown and the connection's end wait for it; a finishing connection
// answers false without running h), and a panic in h answers false and
// is logged with its stack. gliderlabs runs each request on a goroutine
// of its own, where nothing else would recover.
func (s *Server) request(h requestFunc) glssh.RequestHandler {
	return func(gctx glssh.Context, _ *glssh.Server, req *gossh.Request) (bool, []byte) {
		c := connOf(gctx)
		if !c.startWork() {
			return false, nil
		}
		defer c.doneWork()
		defer c.recoverRequest(req.Type)
		return h(c, req)
	}
}

// channel gives a channel handler the same bookkeeping: the channel
// counts as the connection's work (a finishing connection rejects it
// without running h), and a panic in h ends the connection (its channel
// may already be accepted) and is logged with its stack. gliderlabs runs
// each channel handler on a goroutine of its own.
func (s *Server) channel(h channelFunc) glssh.ChannelHandler {
	return func(_ *glssh.Server, sconn *gossh.ServerConn, nc gossh.NewChannel, gctx glssh.Context) {
		c := connOf(gctx)
		if !c.startWork() {
			nc.Reject(gossh.ResourceShortage, "connection closing")
			return
		}
		defer c.doneWork()
		defer c.recoverChannel(nc.ChannelType())
		h(c, sconn, nc)
	}
}
