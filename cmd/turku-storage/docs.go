package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manual is the centre of every page's header line.
const manual = "Turku backup"

// newDocsCmd generates the man pages the package installs. It is hidden:
// packaging/build-deb.sh runs it on the binary it packages.
func newDocsCmd(g *globals) *cobra.Command {
	var date, configDoc string
	cmd := &cobra.Command{
		Use:   "gen-man DIR",
		Short: "Write the man pages into DIR",
		Long: `Writes a page per command into DIR: turku-storage(8) and
turku-storage-serve(8) for the daemon, turku-storage-COMMAND(1) for the
others, and with --configuration the turku-storage.conf(5) page made from
that Markdown reference (docs/configuration.md).`,
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := manDate(date, os.Getenv("SOURCE_DATE_EPOCH"), time.Now())
			if err != nil {
				return err
			}
			hdr := manHeader{date: t, source: "turku-storage " + manVersion(versionString())}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			// Debian installs no PowerShell: no page for its completion.
			if ps, _, err := root.Find([]string{"completion", "powershell"}); err == nil && ps.Name() == "powershell" {
				ps.Hidden = true
			}
			if err := writeCommandPages(root, hdr, args[0]); err != nil {
				return err
			}
			if configDoc == "" {
				return nil
			}
			md, err := os.ReadFile(configDoc)
			if err != nil {
				return fmt.Errorf("--configuration: %w", err)
			}
			return os.WriteFile(filepath.Join(args[0], "turku-storage.conf.5"), confPage(md, hdr), 0o644)
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "date in the pages' header (RFC 3339); default $SOURCE_DATE_EPOCH, else now")
	cmd.Flags().StringVar(&configDoc, "configuration", "", "docs/configuration.md, to write turku-storage.conf(5) from")
	return cmd
}

// manHeader is what every page's .TH line carries besides its title.
type manHeader struct {
	date   time.Time
	source string
}

// th is a page's .TH line (groff_man(7)): title, section, date, source,
// manual.
func (h manHeader) th(title, section string) string {
	return fmt.Sprintf(".TH %q %q %q %q %q", title, section, h.date.UTC().Format("2006-01-02"), h.source, manual)
}

// manDate is the pages' date: --date, else SOURCE_DATE_EPOCH (as
// reproducible builds set it), else now.
func manDate(flag, epoch string, now time.Time) (time.Time, error) {
	switch {
	case flag != "":
		t, err := time.Parse(time.RFC3339, flag)
		if err != nil {
			return time.Time{}, fmt.Errorf("--date: %w", err)
		}
		return t, nil
	case epoch != "":
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
		}
		return time.Unix(n, 0), nil
	}
	return now, nil
}

// snapshotVersion matches build-deb.sh's version of an untagged commit,
// 0.0.0+gitYYYYmmddHHMMSS.COMMIT.
var snapshotVersion = regexp.MustCompile(`^(.*)\+git\d{14}\.([0-9a-f]{7})[0-9a-f]*$`)

// manVersion is the version as a page's footer shows it: a release as
// is, a build of an untagged commit as "0.0.0+c2c87ef" (the footer's
// date is the build's; a terminal's width leaves room for little more).
func manVersion(v string) string {
	if m := snapshotVersion.FindStringSubmatch(v); m != nil {
		return m[1] + "+" + m[2]
	}
	return v
}

// manSection is a command's page section: 8 for the daemon (and the
// command itself, whose page introduces it), 1 for the rest.
func manSection(path string) string {
	switch path {
	case "turku-storage", "turku-storage serve":
		return "8"
	}
	return "1"
}

// pageName is the page of a command path: "turku-storage status" is
// turku-storage-status.
func pageName(path string) string { return strings.ReplaceAll(path, " ", "-") }

// seeAlso matches cobra's references to other pages, which all carry
// the section it was given.
var seeAlso = regexp.MustCompile(`\\fB(turku-storage[a-z-]*)\(\d\)\\fP`)

// writeCommandPages writes the page of cmd and of every command under it
// that is not hidden.
func writeCommandPages(cmd *cobra.Command, hdr manHeader, dir string) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeCommandPages(c, hdr, dir); err != nil {
			return err
		}
	}
	path := cmd.CommandPath()
	name, section := pageName(path), manSection(path)
	var buf bytes.Buffer
	if err := doc.GenMan(cmd, &doc.GenManHeader{Title: strings.ToUpper(name), Section: section, Manual: manual}, &buf); err != nil {
		return err
	}
	page := buf.String()
	// cobra's header has no year-month-day date; ours replaces it.
	if i := strings.Index(page, ".TH "); i >= 0 {
		end := i + strings.IndexByte(page[i:], '\n')
		page = page[:i] + hdr.th(strings.ToUpper(name), section) + page[end:]
	}
	page = seeAlso.ReplaceAllStringFunc(page, func(ref string) string {
		n := seeAlso.FindStringSubmatch(ref)[1]
		path := "turku-storage" + strings.ReplaceAll(strings.TrimPrefix(n, "turku-storage"), "-", " ")
		return `\fB` + n + "(" + manSection(path) + `)\fP`
	})
	extra := manExtras(path)
	if i := strings.Index(page, "\n.SH SEE ALSO"); i >= 0 {
		page = page[:i] + extra + page[i:]
	} else {
		page += extra
	}
	switch path {
	case "turku-storage", "turku-storage serve", "turku-storage config check":
		page += "\n.PP\n\\fBturku-storage.conf\\fP(5)\n"
	}
	return os.WriteFile(filepath.Join(dir, name+"."+section), []byte(page), 0o644)
}
