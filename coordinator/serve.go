package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// ServerOptions configure the network side of the coordinator.
type ServerOptions struct {
	// TLSCert and TLSKey are a PEM certificate and key file to serve
	// HTTPS with; both empty: plain HTTP.
	TLSCert, TLSKey string
	// Registered, when set, is called after every successful
	// update_config, so a newly registered agent's key can be accepted by
	// the SSH server at once instead of at the next refresh.
	Registered func()
}

// Server serves the agent-facing API (Handler) on a listener wrapped with
// Listener, with connection, request and body limits, over TLS when
// configured.
type Server struct {
	srv *http.Server
	ln  net.Listener
	url string
}

// NewServer prepares the agent-facing API on ln; Serve serves it. An error
// (the TLS key pair, as tls.LoadX509KeyPair reports it) closes ln.
func (c *Coordinator) NewServer(ln net.Listener, opts ServerOptions) (*Server, error) {
	ln = c.Listener(ln)
	srv := &http.Server{
		Handler:           notifyOnRegistration(c.Handler(), opts.Registered),
		ReadHeaderTimeout: headerTimeout,
		// Handler sets each request's body deadline; this only bounds
		// a request in case it does not.
		ReadTimeout:    headerTimeout + updateConfigBodyTimeout,
		IdleTimeout:    idleTimeout,
		WriteTimeout:   30 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       log.New(httpErrorLog{c}, "", 0),
	}
	scheme := "http"
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			ln.Close()
			return nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	return &Server{srv: srv, ln: ln, url: scheme + "://" + ln.Addr().String() + "/v1"}, nil
}

// Addr is the address served.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the API's base URL as an agent's api_url would name it.
func (s *Server) URL() string { return s.url }

// Serve serves until ctx ends, then shuts down gracefully: requests in
// flight get up to 10 seconds.
func (s *Server) Serve(ctx context.Context) error {
	srv, ln := s.srv, s.ln
	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("coordinator: %w", err)
	})
	grp.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return grp.Wait()
}

// httpErrorLog receives net/http's own log lines. A failed TLS handshake
// (a scanner, a client that sends nothing until the deadline) is one line
// per connection: it goes to DEBUG and is counted in the summary of
// refused clients, so a flood of them is one line a minute. The rest
// (panics, accept errors) stay warnings.
type httpErrorLog struct{ c *Coordinator }

func (l httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if rest, ok := strings.CutPrefix(msg, "http: TLS handshake error from "); ok {
		remote, reason, _ := strings.Cut(rest, ": ")
		l.c.log.Debug("api TLS handshake failed", "remote", remote, "err", reason)
		l.c.admission.noteRefused(refusedTLSHandshake)
		return len(p), nil
	}
	l.c.log.Warn("api server", "err", msg)
	return len(p), nil
}

// notifyOnRegistration calls changed after every successful update_config,
// so a newly registered agent's key is accepted by the SSH server at once
// instead of at the next refresh.
func notifyOnRegistration(h http.Handler, changed func()) http.Handler {
	if changed == nil {
		return h
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sr := &statusRecorder{ResponseWriter: rw, status: http.StatusOK}
		h.ServeHTTP(sr, r)
		if sr.status == http.StatusOK && strings.HasSuffix(r.URL.Path, "/update_config") {
			changed()
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
