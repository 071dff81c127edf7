package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/coordinator"
	"github.com/turku-backup/turku-storage/daemon"
)

// newCoordinatorCmds are the built-in coordinator's administration:
// machines, sources, auth and coordinator export.
func newCoordinatorCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newMachinesCmd(g), newSourcesCmd(g), newAuthCmd(g), newCoordinatorCmd(g)}
}

// storeCmd is an admin command that runs fn on the built-in coordinator's
// database and prints the line it returns.
func storeCmd(g *globals, use, short string, args cobra.PositionalArgs, fn func(ctx context.Context, s *coordinator.Store, args []string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: g.withConfig(func(cmd *cobra.Command, args []string, log *slog.Logger, cfg *config.Config) error {
			if !cfg.EmbeddedCoordinator() {
				return notEmbedded(cmd, cfg.APIURL)
			}
			s, err := coordinator.OpenExistingStore(cmd.Context(), daemon.CoordinatorDBPath(cfg), coordinator.StoreOptions{Logger: g.commandLogger(log)})
			if err != nil {
				return err
			}
			defer s.Close()
			line, err := fn(cmd.Context(), s, args)
			if err == nil && line != "" {
				_, err = fmt.Fprintln(g.stdout, line)
			}
			return err
		}),
	}
}

func newMachinesCmd(g *globals) *cobra.Command {
	machines := &cobra.Command{Use: "machines", Short: "Manage machines of the built-in coordinator"}
	machines.AddCommand(
		storeCmd(g, "list", "List registered machines", cobra.NoArgs, func(ctx context.Context, s *coordinator.Store, _ []string) (string, error) {
			list, err := s.ListMachines(ctx)
			if err != nil {
				return "", err
			}
			return "", coordinator.WriteMachines(g.stdout, list)
		}),
		setActiveCmd(g, "disable", false, "Refuse a machine (its agent gets 403 Bad auth; its key is dropped at the next refresh)"),
		setActiveCmd(g, "enable", true, "Accept a disabled machine again"),
	)
	return machines
}

func newSourcesCmd(g *globals) *cobra.Command {
	sources := &cobra.Command{Use: "sources", Short: "Manage sources of the built-in coordinator"}
	sources.AddCommand(
		storeCmd(g, "list [MACHINE]", "List sources, of one machine (UUID or unit name) or all", cobra.MaximumNArgs(1),
			func(ctx context.Context, s *coordinator.Store, args []string) (string, error) {
				list, err := s.ListSources(ctx, strings.Join(args, ""))
				if err != nil {
					return "", err
				}
				return "", coordinator.WriteSources(g.stdout, list)
			}),
		storeCmd(g, "run-now MACHINE SOURCE", "Make a source due now (its agent backs it up at its next ping)", cobra.ExactArgs(2),
			func(ctx context.Context, s *coordinator.Store, args []string) (string, error) {
				return args[0] + " " + args[1] + " is due now", s.RunNow(ctx, args[0], args[1])
			}),
	)
	return sources
}

func setActiveCmd(g *globals, verb string, active bool, short string) *cobra.Command {
	return storeCmd(g, verb+" MACHINE", short, cobra.ExactArgs(1), func(ctx context.Context, s *coordinator.Store, args []string) (string, error) {
		return "machine " + args[0] + " " + verb + "d", s.SetMachineActive(ctx, args[0], active)
	})
}

func newAuthCmd(g *globals) *cobra.Command {
	var authName string
	auth := &cobra.Command{Use: "auth", Short: "Registration secrets of the built-in coordinator"}
	create := storeCmd(g, "create machine|storage", "Create a registration auth and print its secret once", cobra.ExactArgs(1),
		func(ctx context.Context, s *coordinator.Store, args []string) (string, error) {
			secret, err := s.CreateRegistrationAuth(ctx, args[0], authName)
			if errors.Is(err, coordinator.ErrExists) {
				return "", fmt.Errorf("%w; its secret is not shown again: create another with --name NAME (agents then send NAME as api_auth_name)", err)
			}
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("api_auth_name: %s\napi_auth_secret: %s", cmp.Or(authName, coordinator.DefaultAuthName(args[0])), secret), nil
		})
	create.Long = `Creates a registration auth and prints its secret; only a salted hash is
stored, so this is the only time it is shown. Agents put the name and secret
in api_auth_name / api_auth_secret for their first update_config.`
	create.Flags().StringVar(&authName, "name", "", "auth name (default \"Machine Registrations\" or \"Storage Registrations\")")
	auth.AddCommand(create)
	return auth
}

func newCoordinatorCmd(g *globals) *cobra.Command {
	var output string
	coord := &cobra.Command{Use: "coordinator", Short: "Built-in coordinator maintenance"}
	export := storeCmd(g, "export", "Write machines, sources and logs as a Django fixture for turku-api's loaddata", cobra.NoArgs,
		func(ctx context.Context, s *coordinator.Store, _ []string) (string, error) {
			sources, err := s.ListSources(ctx, "")
			if err != nil {
				return "", err
			}
			coordinator.WarnCron(g.stderr, sources)
			if output == "" || output == "-" {
				return "", s.Export(ctx, g.stdout)
			}
			return "", s.ExportFile(ctx, output)
		})
	export.Long = `Writes the built-in coordinator's machines, sources and backup logs as a
Django fixture (JSON) that the real turku-api loads with
"python3 -m django loaddata FILE" — the way out when a site outgrows one
storage unit. See docs/operations.md for the whole procedure.`
	export.Flags().StringVarP(&output, "output", "o", "-", "file to write (default stdout)")
	coord.AddCommand(export)
	return coord
}
