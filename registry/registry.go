package registry

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
)

// API is the coordinator call a Registrar needs.
type API interface {
	UpdateConfig(ctx context.Context, req apiclient.UpdateConfigRequest) (*apiclient.UpdateConfigResponse, error)
}

// SpaceFunc returns total and available MiB over the storage volumes.
type SpaceFunc func() (total, available int64, err error)

// Options configures a Registrar.
type Options struct {
	API API
	// Storage is what to advertise; the space fields are filled per call.
	Storage apiclient.StorageRegistration
	// Auth is sent as "auth": nil, a apiclient.RegistrationAuth, or a
	// legacy string.
	Auth      any
	Space     SpaceFunc
	CachePath string
	// BuiltIn is set when API is the built-in coordinator, so the log
	// does not speak of an API that is not there.
	BuiltIn bool
	Logger  *slog.Logger
	Now     func() time.Time
}

// Registrar performs storage_update_config and keeps the cache.
type Registrar struct {
	mu   sync.Mutex // guards opts, replaced on configuration reload
	opts Options
}

// New returns a Registrar.
func New(opts Options) *Registrar {
	r := &Registrar{}
	r.Update(opts)
	return r
}

// Update replaces the options (configuration reload); the next refresh
// uses them.
func (r *Registrar) Update(opts Options) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts = opts
}

func (r *Registrar) options() Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts
}

// Result summarises one successful refresh.
type Result struct {
	Machines       map[string]apiclient.MachineInfo
	SpaceTotal     int64
	SpaceAvailable int64
}

// Refresh registers or refreshes the storage unit and, only when the call
// succeeded, replaces the cache. A failed call leaves the cache untouched.
func (r *Registrar) Refresh(ctx context.Context) (*Result, error) {
	opts := r.options()
	total, avail, err := opts.Space()
	if err != nil {
		return nil, fmt.Errorf("measure volume space: %w", err)
	}
	req := apiclient.UpdateConfigRequest{Storage: opts.Storage, Auth: opts.Auth}
	req.Storage.SpaceTotal = total
	req.Storage.SpaceAvailable = avail
	resp, err := opts.API.UpdateConfig(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := SaveCache(opts.CachePath, Cache{Updated: opts.Now(), Machines: resp.Machines}); err != nil {
		return nil, fmt.Errorf("save machine cache: %w", err)
	}
	return &Result{Machines: resp.Machines, SpaceTotal: total, SpaceAvailable: avail}, nil
}

// Loop refreshes every interval plus up to 10% random jitter, and
// whenever kick fires (SIGHUP). After a failure it retries with exponential
// backoff from 10 s up to the interval. Each success is handed to apply.
// Loop returns when ctx ends.
func (r *Registrar) Loop(ctx context.Context, interval time.Duration, kick <-chan struct{}, apply func(*Result)) {
	log := r.options().Logger
	from := "API"
	if r.options().BuiltIn {
		from = "the built-in coordinator"
	}
	backoff := 10 * time.Second
	for {
		wait := interval + time.Duration(rand.Int64N(int64(interval)/10+1))
		res, err := r.Refresh(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = min(backoff, interval)
			backoff *= 2
			log.Warn("refresh from "+from+" failed; serving cached keys", "err", err, "retry_in", wait)
		default:
			backoff = 10 * time.Second
			log.Info("refreshed machines from "+from, "machines", len(res.Machines),
				"space_total_mib", res.SpaceTotal, "space_available_mib", res.SpaceAvailable)
			apply(res)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
			t.Stop()
		case <-t.C:
		}
	}
}
