package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/internal/words"
)

func newUpdateConfigCmd(g *globals) *cobra.Command {
	var authName, authSecret string
	var wait float64
	cmd := &cobra.Command{
		Use:   "update-config",
		Short: "Register this storage unit with turku-api and refresh the agent key cache",
		Long: `Calls storage_update_config on the configured api_url: registers this
storage unit on first use (with the registration auth from --api-auth-name
and --api-auth-secret, or api_auth_name/api_auth_secret, or the legacy
api_auth string in the configuration), advertises its SSH host keys and
free space, and stores the returned machines (the agent keys allowed to log
in) in VAR_DIR/machines.json, atomically. A failed call leaves the cache as
it was.

'serve' does this by itself every update_config_interval; run this command
to register before the first start, or from cron/a timer with --wait to
spread the load.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if (authName == "") != (authSecret == "") {
				return fmt.Errorf("--api-auth-name and --api-auth-secret go together")
			}
			if wait < 0 {
				return fmt.Errorf("--wait %v: want a number of seconds ≥ 0", wait)
			}
			log, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			if cfg.EmbeddedCoordinator() {
				return fmt.Errorf("no api_url in %s: with the built-in coordinator, 'serve' registers this storage unit itself", g.configDir)
			}
			if wait > 0 {
				d := time.Duration(rand.Float64() * wait * float64(time.Second))
				log.Debug("waiting before the API call", "duration", d)
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			w, err := daemon.NewWiring(cfg, log, versionString())
			if err != nil {
				return err
			}
			defer w.Close()
			reg, err := w.Registrar(authName, authSecret)
			if err != nil {
				return err
			}
			res, err := reg.Refresh(ctx)
			if err != nil {
				return fmt.Errorf("update-config: %w", err)
			}
			_, err = fmt.Fprintf(g.stdout, "Registered %q with %s: %s; space %d MiB total, %d MiB available\n",
				cfg.Name, cfg.APIURL, words.Count(len(res.Machines), "machine", ""), res.SpaceTotal, res.SpaceAvailable)
			return err
		},
	}
	cmd.Flags().StringVar(&authName, "api-auth-name", "", "storage registration auth name (first registration only)")
	cmd.Flags().StringVar(&authSecret, "api-auth-secret", "", "storage registration auth secret (first registration only)")
	cmd.Flags().Float64VarP(&wait, "wait", "w", 0, "sleep a random time up to this many seconds first")
	return cmd
}
