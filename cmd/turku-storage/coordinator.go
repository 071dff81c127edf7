package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/coordinator"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/internal/words"
)

func coordinatorDBPath(cfg *config.Config) string { return daemon.CoordinatorDBPath(cfg) }

// withStore opens the built-in coordinator's database for an admin command.
func withStore(cmd *cobra.Command, g *globals, fn func(ctx context.Context, s *coordinator.Store) error) error {
	log, cfg, err := g.loadWithLog()
	if err != nil {
		return err
	}
	if !cfg.EmbeddedCoordinator() {
		return notEmbedded(cmd, cfg.APIURL)
	}
	path := coordinatorDBPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("built-in coordinator database %s: %w (has 'serve' run yet?)", path, err)
	}
	s, err := coordinator.OpenStore(cmd.Context(), path, coordinator.StoreOptions{Logger: g.commandLogger(log)})
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(cmd.Context(), s)
}

// newCoordinatorCmds are the built-in coordinator's administration:
// machines, sources, auth and coordinator export.
func newCoordinatorCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newMachinesCmd(g), newSourcesCmd(g), newAuthCmd(g), newCoordinatorCmd(g)}
}

func newMachinesCmd(g *globals) *cobra.Command {
	machines := &cobra.Command{Use: "machines", Short: "Manage machines of the built-in coordinator"}
	machines.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List registered machines", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withStore(cmd, g, func(ctx context.Context, s *coordinator.Store) error {
					list, err := s.ListMachines(ctx)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "UUID\tUNIT\tENVIRONMENT\tSERVICE\tACTIVE\tPUBLISHED\tSOURCES\tCHECKED IN")
					for _, m := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\t%d\t%s\n", m.UUID, m.UnitName, dash(m.EnvironmentName),
							dash(m.ServiceName), m.Active, m.Published, m.Sources, words.When(m.CheckedIn))
					}
					return tw.Flush()
				})
			},
		},
		setActiveCmd(g, "disable", false, "Refuse a machine (its agent gets 403 Bad auth; its key is dropped at the next refresh)"),
		setActiveCmd(g, "enable", true, "Accept a disabled machine again"),
	)
	return machines
}

func newSourcesCmd(g *globals) *cobra.Command {
	sources := &cobra.Command{Use: "sources", Short: "Manage sources of the built-in coordinator"}
	sources.AddCommand(
		&cobra.Command{
			Use: "list [MACHINE]", Short: "List sources, of one machine (UUID or unit name) or all", Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				machine := ""
				if len(args) == 1 {
					machine = args[0]
				}
				return withStore(cmd, g, func(ctx context.Context, s *coordinator.Store) error {
					list, err := s.ListSources(ctx, machine)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "UNIT\tSOURCE\tPATH\tFREQUENCY\tRETENTION\tACTIVE\tLAST OK\tLAST BACKUP\tNEXT BACKUP")
					for _, src := range list {
						// A source that never ran has no outcome, though its
						// success column starts true.
						lastOK := fmt.Sprint(src.Success)
						if src.LastBackedUp.IsZero() {
							lastOK = "never"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", src.UnitName, src.Name, src.Path, dash(src.Frequency),
							dash(src.Retention), src.Active && src.Published, lastOK, words.When(src.LastBackedUp), words.When(src.NextBackup))
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "run-now MACHINE SOURCE", Short: "Make a source due now (its agent backs it up at its next ping)", Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withStore(cmd, g, func(ctx context.Context, s *coordinator.Store) error {
					if err := s.RunNow(ctx, args[0], args[1]); err != nil {
						return err
					}
					_, err := fmt.Fprintf(g.stdout, "%s %s is due now\n", args[0], args[1])
					return err
				})
			},
		},
	)
	return sources
}

func newAuthCmd(g *globals) *cobra.Command {
	var authName string
	auth := &cobra.Command{Use: "auth", Short: "Registration secrets of the built-in coordinator"}
	create := &cobra.Command{
		Use:   "create machine|storage",
		Short: "Create a registration auth and print its secret once",
		Long: `Creates a registration auth and prints its secret; only a salted hash is
stored, so this is the only time it is shown. Agents put the name and secret
in api_auth_name / api_auth_secret for their first update_config.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, g, func(ctx context.Context, s *coordinator.Store) error {
				name := authName
				secret, err := s.CreateRegistrationAuth(ctx, args[0], name)
				if errors.Is(err, coordinator.ErrExists) {
					return fmt.Errorf("%w; its secret is not shown again: create another with --name NAME (agents then send NAME as api_auth_name)", err)
				}
				if err != nil {
					return err
				}
				if name == "" {
					name = map[string]string{"machine": coordinator.RegistrationAuthName, "storage": "Storage Registrations"}[args[0]]
				}
				_, err = fmt.Fprintf(g.stdout, "api_auth_name: %s\napi_auth_secret: %s\n", name, secret)
				return err
			})
		},
	}
	create.Flags().StringVar(&authName, "name", "", "auth name (default \"Machine Registrations\" or \"Storage Registrations\")")
	auth.AddCommand(create)
	return auth
}

func newCoordinatorCmd(g *globals) *cobra.Command {
	var output string
	coord := &cobra.Command{Use: "coordinator", Short: "Built-in coordinator maintenance"}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write machines, sources and logs as a Django fixture for turku-api's loaddata",
		Long: `Writes the built-in coordinator's machines, sources and backup logs as a
Django fixture (JSON) that the real turku-api loads with
"python3 -m django loaddata FILE" — the way out when a site outgrows one
storage unit. See docs/operations.md for the whole procedure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, g, func(ctx context.Context, s *coordinator.Store) error {
				if err := warnCronSources(ctx, g, s); err != nil {
					return err
				}
				if output == "" || output == "-" {
					return s.Export(ctx, g.stdout)
				}
				return s.ExportFile(ctx, output)
			})
		},
	}
	export.Flags().StringVarP(&output, "output", "o", "-", "file to write (default stdout)")
	coord.AddCommand(export)
	return coord
}

// warnCronSources names the sources whose "cron …" frequency turku-api
// cannot schedule: its views.py calls the croniter module as a function,
// so such a source gets HTTP 500 on every report after the move.
func warnCronSources(ctx context.Context, g *globals, s *coordinator.Store) error {
	sources, err := s.ListSources(ctx, "")
	if err != nil {
		return err
	}
	for _, src := range sources {
		if strings.HasPrefix(strings.TrimSpace(src.Frequency), "cron") {
			fmt.Fprintf(g.stderr, "warning: %s %s has frequency %q: turku-api fails on cron frequencies (HTTP 500 on every report); change it to hourly/daily/weekly/monthly before moving\n",
				src.UnitName, src.Name, src.Frequency)
		}
	}
	return nil
}

func setActiveCmd(g *globals, verb string, active bool, short string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " MACHINE", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, g, func(ctx context.Context, s *coordinator.Store) error {
				if err := s.SetMachineActive(ctx, args[0], active); err != nil {
					return err
				}
				_, err := fmt.Fprintf(g.stdout, "machine %s %sd\n", args[0], verb)
				return err
			})
		},
	}
}
