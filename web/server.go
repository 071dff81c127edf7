package web

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// State is what the dashboard reads of the live state; *monitor.State
// implements it.
type State interface {
	Status() monitor.Status
	Sources() []monitor.SourceStatus
	Assigned() (map[string]monitor.Assignment, bool)
	Outcomes() int64
	// Orphans are the machines the last key refresh found on disk and no
	// longer assigned here, with since when.
	Orphans() map[string]monitor.Orphan
}

// Options configure a Server; cmd builds them from the configuration.
type Options struct {
	// Name is the storage unit's name, shown in every title.
	Name  string
	State State
	// VarDir is serve's VAR_DIR: the machines' snapshots are found
	// under VAR_DIR/machines.
	VarDir   string
	Location *time.Location
	History  *history.Store
	// Staleness colours ages as check rates them.
	Staleness history.Staleness
	// ConfigDir is the configuration directory to name in the restore
	// command line; empty: the default one, not named.
	ConfigDir string
	// Users maps user names to bcrypt hashes (web_auth_file); empty: no
	// authentication.
	Users map[string][]byte
	// TLSCert and TLSKey, when set, serve HTTPS.
	TLSCert, TLSKey string
	// PageSize is how many machines the overview lists a page; 0: 100.
	PageSize int
	// DiskRescan is how often every machine's snapshots are read again
	// (a finished backup has its machine's read at once); 0: 10 minutes.
	DiskRescan time.Duration
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the dashboard.
type Server struct {
	opts Options
	log  *slog.Logger
	// restore starts the restore command line: "turku-storage" and the
	// configuration directory when not the default.
	restore string
	pages   map[string]*template.Template
	auth    *basicAuth
	disk    *diskCache

	mu   sync.Mutex // guards addr
	addr net.Addr
}

// New checks opts and parses the templates.
func New(opts Options) (*Server, error) {
	if opts.State == nil || opts.VarDir == "" || opts.History == nil {
		return nil, errors.New("web: State, VarDir and History are required")
	}
	if opts.Staleness.MaxAge <= 0 {
		return nil, errors.New("web: a positive maximum age is required")
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.DiskRescan <= 0 {
		opts.DiskRescan = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger, pages: map[string]*template.Template{}, restore: "turku-storage"}
	if opts.ConfigDir != "" {
		s.restore += " -c " + shellQuote(opts.ConfigDir)
	}
	for _, page := range []string{"overview.html", "machine.html", "error.html"} {
		t, err := template.New(page).Funcs(funcs(opts.Location)).ParseFS(templateFS, "templates/layout.html", "templates/"+page)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		s.pages[page] = t
	}
	if len(opts.Users) > 0 {
		s.auth = newBasicAuth(opts.Users)
	}
	s.disk = newDiskCache(opts.VarDir, opts.Location, opts.Logger)
	return s, nil
}

// Handler is the dashboard's HTTP handler, with its security headers,
// method filter and authentication.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	// Browsers ask for /favicon.ico whatever the page links.
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "favicon.svg")
	})
	mux.HandleFunc("/{$}", s.overviewPage)
	mux.HandleFunc("/api/overview", s.overviewJSON)
	mux.HandleFunc("/api/running", s.runningJSON)
	mux.HandleFunc("/machine/{uuid}", s.machinePage)
	mux.HandleFunc("/api/machine/{uuid}", s.machineJSON)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w, r) })
	return s.guard(mux)
}

// guard sets the headers every answer carries, refuses every method but
// GET and HEAD, and asks for a password when users are configured.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Scripts, styles and images from this origin only: no inline
		// script can run, whatever a machine name or summary holds.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		if s.auth != nil && !s.auth.check(r) {
			h.Set("WWW-Authenticate", `Basic realm="turku-storage", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Serve answers on ln until ctx ends, then shuts down gracefully; it also
// keeps the cache of the snapshots on disk fresh. It returns nil after
// ctx ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCert, s.opts.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("web_tls_cert: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	// stop ends the goroutines below when Serve fails as well as on ctx.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.disk.keepFresh(ctx, s.opts.State, s.opts.DiskRescan)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(ln)
	stop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("web: %w", err)
}

// Addr is the address Serve listens on; nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}
