package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/transfer"
)

func newSendCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "send MACHINE",
		Short: "Write a machine's whole history as a stream, to move it to another storage unit",
		Long: `Writes every snapshot of every source of MACHINE (a UUID, the
ENV-SERVICE-UNIT link name or a unit name), with their .json files, the
latest links and the hard links between snapshots, as one stream with a
SHA-256 checksum at its end, to standard output or to FILE (-o). Another
storage unit reads it with "turku-storage receive":

    turku-storage send web1 | ssh unit2 turku-storage receive

The machine's lock is held while it is sent, so no backup of it runs
meanwhile. Nothing here changes; remove the machine from this unit once
the receiving unit has it (docs/operations.md, "Moving a machine to
another unit").`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeMachineSource(g, false)(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			log, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			uuid, _, err := backup.ResolveMachine(cfg.VarDir, args[0], registeredMachines(cfg))
			if err != nil {
				return err
			}
			m, err := (&wiring{cfg: cfg, log: log}).machines()
			if err != nil {
				return err
			}
			opts := transfer.SendOptions{Machines: m, Machine: uuid, Storage: cfg.Name, Logger: log}
			report := g.stderr
			var sent transfer.Sent
			if out == "" {
				if isTerminal(g.stdout) {
					return fmt.Errorf("not writing a transfer stream to a terminal: pipe it, or give -o FILE")
				}
				sent, err = transfer.Send(cmd.Context(), g.stdout, opts)
			} else {
				report = g.stdout
				sent, err = sendToFile(cmd, out, opts)
			}
			if err != nil {
				return err
			}
			s := sent.Stats
			fmt.Fprintf(report, "sent machine %s%s: %d directories, %d files (%s), %d hard links, %d symlinks, %d devices; stream %s\n",
				uuid, namesText(sent.Header.Names), s.Dirs, s.Files, humanize.IBytes(uint64(s.Bytes)), s.HardLinks, s.Symlinks, s.Devices,
				humanize.IBytes(uint64(sent.StreamBytes)))
			if s.Skipped > 0 {
				fmt.Fprintf(report, "left out: %d sockets (see the log)\n", s.Skipped)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the stream to `FILE` (created when complete) instead of standard output")
	return cmd
}

// sendToFile writes the stream under a temporary name beside path and
// renames it to path once complete, so a failed send leaves no file that
// looks whole.
func sendToFile(cmd *cobra.Command, path string, opts transfer.SendOptions) (transfer.Sent, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return transfer.Sent{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	sent, err := transfer.Send(cmd.Context(), io.Writer(bw), opts)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return transfer.Sent{}, fmt.Errorf("-o %s: %w", path, err)
	}
	return sent, nil
}

func namesText(names []string) string {
	if len(names) == 0 {
		return ""
	}
	s := " ("
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s + ")"
}

// machines is this unit's machines (locks, placement, links) without a
// coordinator: what send and receive need.
func (w *wiring) machines() (*backup.Machines, error) { return backup.NewMachines(w.backupOptions()) }
