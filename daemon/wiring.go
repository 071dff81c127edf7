package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/coordinator"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
	"github.com/turku-backup/turku-storage/registry"
	"github.com/turku-backup/turku-storage/sshserver"
)

// Wiring turns a Config into the constructors' Options; it holds what
// serve, ping and update-config build the same way.
type Wiring struct {
	cfg *config.Config
	log *slog.Logger
	// version goes into the API client's User-Agent and the control
	// socket's status.
	version string
	api     *apiclient.Client
	// coord is the built-in coordinator, when no api_url is configured.
	coord *coordinator.Coordinator
	// machinesChanged, when set, is called after the built-in coordinator
	// registered or updated a machine.
	machinesChanged func()
	// monitor receives the backups' phases and results; nil: none.
	monitor *monitor.State
	// history records every source's attempt (VAR_DIR/history).
	history *history.Store
	// closers run on Close, in reverse order.
	closers []func()
	// slots and reports, when set, are shared by every engine built (see
	// backup.Slots and backup.Reports); serve sets them once. slots is
	// where max_concurrent_backups goes: made from it here or by serve,
	// resized by a reload, read by status.
	slots   *backup.Slots
	reports *backup.Reports
}

// NewWiring builds the API client from cfg, or without api_url the
// built-in coordinator and its in-process transport; version is the
// build's, for the User-Agent. Close releases what it opened.
func NewWiring(cfg *config.Config, log *slog.Logger, version string) (*Wiring, error) {
	w := &Wiring{cfg: cfg, log: log, version: version, history: history.New(HistoryDir(cfg))}
	opts := apiclient.Options{
		URL:       cfg.APIURL,
		Storage:   apiclient.StorageAuth{Name: cfg.Name, Secret: cfg.Secret},
		CAFile:    cfg.APICAFile,
		Timeout:   cfg.APITimeout,
		UserAgent: "turku-storage/" + version,
	}
	if cfg.EmbeddedCoordinator() {
		t, err := w.openCoordinator()
		if err != nil {
			return nil, err
		}
		opts.URL = "http://coordinator.invalid/v1"
		opts.HTTPClient = &http.Client{Transport: t}
	}
	api, err := apiclient.New(opts)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.api = api
	return w, nil
}

// Offline is the wiring of a command that works on the disk only (send,
// receive): no API client, no coordinator, no history; nothing to close.
func Offline(cfg *config.Config, log *slog.Logger) *Wiring {
	return &Wiring{cfg: cfg, log: log}
}

// Close releases what the wiring opened.
func (w *Wiring) Close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
}

// hostSigners loads (creating when missing) the SSH host keys.
func (w *Wiring) hostSigners() ([]gossh.Signer, error) {
	var out []gossh.Signer
	for _, path := range w.cfg.SSHHostKeyFiles {
		s, err := sshserver.LoadOrCreateHostKey(path)
		if err != nil {
			return nil, fmt.Errorf("ssh_host_key_files: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// advertisedKeys are ssh_ping_host_keys when configured, else the public
// halves of our own host keys: agents connect with StrictHostKeyChecking.
func (w *Wiring) advertisedKeys(signers []gossh.Signer) []string {
	if len(w.cfg.SSHPingHostKeys) > 0 {
		return w.cfg.SSHPingHostKeys
	}
	keys := make([]string, 0, len(signers))
	for _, s := range signers {
		keys = append(keys, sshserver.AuthorizedKey(s))
	}
	return keys
}

func (w *Wiring) volumes() []backup.Volume {
	return BackupVolumes(w.cfg.Volumes)
}

// HistoryDir is where the attempt history lives: VAR_DIR/history.
func HistoryDir(cfg *config.Config) string { return filepath.Join(cfg.VarDir, history.DirName) }

func (w *Wiring) cachePath() string { return filepath.Join(w.cfg.VarDir, registry.CacheFile) }

// Registrar builds the storage_update_config caller, advertising the
// host keys (created when missing) the server will serve. Registration
// auth: authName and authSecret (update-config's flags), then
// api_auth_name/api_auth_secret, then the legacy api_auth string.
func (w *Wiring) Registrar(authName, authSecret string) (*registry.Registrar, error) {
	signers, err := w.hostSigners()
	if err != nil {
		return nil, err
	}
	return registry.New(w.registrarOptions(authName, authSecret, w.advertisedKeys(signers))), nil
}

// registrarOptions are the registrar's options advertising hostKeys.
func (w *Wiring) registrarOptions(authName, authSecret string, hostKeys []string) registry.Options {
	var auth any
	switch {
	case authName != "":
		auth = apiclient.RegistrationAuth{Name: authName, Secret: authSecret}
	case w.cfg.APIAuthName != "":
		auth = apiclient.RegistrationAuth{Name: w.cfg.APIAuthName, Secret: w.cfg.APIAuthSecret}
	case w.cfg.APIAuth != "":
		auth = w.cfg.APIAuth
	}
	vols := w.volumes()
	return registry.Options{
		API: w.api,
		Storage: apiclient.StorageRegistration{
			SSHPingHost:     w.cfg.SSHPingHost,
			SSHPingPort:     w.cfg.SSHPingPort,
			SSHPingUser:     w.cfg.SSHPingUser,
			SSHPingHostKeys: hostKeys,
			Published:       w.cfg.Published,
		},
		Auth:    auth,
		BuiltIn: w.cfg.EmbeddedCoordinator(),
		// Each refresh checks the volumes first: an unusable one is
		// logged for what it is and left out of the space advertised,
		// and the keys still refresh.
		Space: func() (int64, int64, error) {
			CheckVolumes(w.log, w.cfg.VarDir, w.cfg.Volumes, true)
			total, avail := backup.Space(w.cfg.VarDir, vols)
			return total, avail, nil
		},
		CachePath: w.cachePath(),
		Logger:    w.log,
	}
}

// engine builds the backup engine.
func (w *Wiring) engine() (*backup.Engine, error) {
	if w.slots == nil {
		w.slots = backup.NewSlots(w.cfg.MaxConcurrentBackups)
	}
	return backup.New(w.BackupOptions())
}

// BackupOptions are the backup package's options from the configuration
// and what the wiring holds.
func (w *Wiring) BackupOptions() backup.Options {
	opts := backup.Options{
		StorageName:             w.cfg.Name,
		VarDir:                  w.cfg.VarDir,
		LockDir:                 w.cfg.LockDir,
		Volumes:                 w.volumes(),
		DefaultMaxUsagePct:      w.cfg.MaxUsagePct,
		DefaultMaxInodeUsagePct: w.cfg.MaxInodeUsagePct,
		SnapshotMode:            w.cfg.SnapshotMode,
		PreserveHardLinks:       w.cfg.PreserveHardLinks,
		Location:                w.cfg.Location,
		RsyncCommand:            w.cfg.RsyncCommand,
		Slots:                   w.slots,
		Reports:                 w.reports,
		History:                 w.history,
		Observer:                w.observer(),
		Logger:                  w.log,
		Registered:              w.registered,
	}
	if w.api != nil { // a nil *apiclient.Client in the interface would not be nil
		opts.API = w.api
	}
	return opts
}

// PullEngine builds, for one agent session outside serve (ping), the
// report queue (closed by Close) and the backup engine that spools into
// it; WaitReports waits for the deliveries before the process ends.
func (w *Wiring) PullEngine() (*backup.Engine, error) {
	w.reports = backup.NewReports(backup.ReportsOptions{VarDir: w.cfg.VarDir, API: w.api, Logger: w.log, SlowAfter: w.cfg.APITimeout,
		MaxCount: w.cfg.ReportSpoolMaxCount, MaxBytes: w.cfg.ReportSpoolMaxBytes})
	w.closers = append(w.closers, w.reports.Close)
	return w.engine()
}

// WaitReports waits until the reports PullEngine's engine spooled are
// answered, or ctx ends.
func (w *Wiring) WaitReports(ctx context.Context) error { return w.reports.Wait(ctx) }

// observer is the engine's Observer: the monitor, or none (a nil
// *monitor.State in the interface would not be nil).
func (w *Wiring) observer() backup.Observer {
	if w.monitor == nil {
		return nil
	}
	return w.monitor
}
