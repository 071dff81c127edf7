package manpages

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

// Header is what every page's .TH line carries besides its title: the
// date and the source ("turku-storage VERSION").
type Header struct {
	Date   time.Time
	Source string
}

// th is a page's .TH line (groff_man(7)): title, section, date, source,
// manual.
func (h Header) th(title, section string) string {
	return fmt.Sprintf(".TH %q %q %q %q %q", title, section, h.Date.UTC().Format("2006-01-02"), h.Source, manual)
}

// Date is the pages' date: --date, else SOURCE_DATE_EPOCH (as
// reproducible builds set it), else now.
func Date(flag, epoch string, now time.Time) (time.Time, error) {
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

// Version is the version as a page's footer shows it: a release as
// is, a build of an untagged commit as "0.0.0+c2c87ef" (the footer's
// date is the build's; a terminal's width leaves room for little more).
func Version(v string) string {
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

// WriteCommands writes the page of cmd and of every command under it
// that is not hidden.
func WriteCommands(cmd *cobra.Command, hdr Header, dir string) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := WriteCommands(c, hdr, dir); err != nil {
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
