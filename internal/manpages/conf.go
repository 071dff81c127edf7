package manpages

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"

	"github.com/turku-backup/turku-storage/config"
)

// Conf is turku-storage.conf(5): the prose of the Markdown
// configuration reference (docs/configuration.md), its title dropped and
// its sections (##) as the page's sections, with the keys as the settings
// table (config.Reference) has them in place of the reference's tables,
// which are made from the same table. This is the one place that knows
// where the page's text comes from.
func Conf(markdown []byte, hdr Header) []byte {
	body := string(markdown)
	// The reference's own title: the page has NAME instead.
	if strings.HasPrefix(body, "# ") {
		_, body, _ = strings.Cut(body, "\n")
	}
	before, rest, found := strings.Cut(body, config.ReferenceBegin)
	_, after, _ := strings.Cut(rest, config.ReferenceEnd)
	if !found {
		before, after = body, ""
	}
	body = before + keyLists(config.Reference()) + after
	body = regexp.MustCompile(`(?m)^## (.+)$`).ReplaceAllStringFunc(body, strings.ToUpper)
	// Links to other documents by path mean nothing in a man page: the
	// text stays, and the documents are in /usr/share/doc/turku-storage.
	body = regexp.MustCompile(`\[([^\]]+)\]\([^)]+\)`).ReplaceAllString(body, "$1")
	md := `# turku-storage.conf

## NAME
turku-storage.conf - configuration of the Turku backup storage unit

## SYNOPSIS
/etc/turku-storage/config.d/*.json, *.yaml, *.yml

## DESCRIPTION
` + body + `

## FILES
/etc/turku-storage/config.d/
: the configuration directory; /etc/turku-storage/config.d/10-storage.yaml.example is the packaged example to copy

/usr/share/doc/turku-storage/configuration.md.gz
: this reference as Markdown

/usr/share/doc/turku-storage/operations.md.gz
: install, the systemd unit, monitoring, restore and migration, which the keys above refer to

## SEE ALSO
**turku-storage**(8), **turku-storage-serve**(8), **turku-storage-config-check**(1)
`
	page := md2man.Render([]byte(md))
	// md2man makes the first heading the .TH line as written; ours has
	// the section, date and source every page has.
	th := []byte(".TH turku-storage.conf\n")
	return bytes.Replace(page, th, []byte(hdr.th("TURKU-STORAGE.CONF", "5")+"\n"), 1)
}

// keyLists writes the tables of keys as definition lists: a man page's
// table cannot wrap text that long within a terminal's width.
func keyLists(tables []config.Table) string {
	var b strings.Builder
	for _, t := range tables {
		b.WriteString("\n## " + t.Title + "\n\n")
		for _, s := range t.Settings {
			keys := make([]string, len(s.Keys))
			for i, k := range s.Keys {
				keys[i] = "`" + k + "`"
			}
			b.WriteString(strings.Join(keys, ", ") + " (default: " + s.Default)
			if s.Reload != "" {
				b.WriteString("; on reload: " + s.Reload)
			}
			b.WriteString(")\n: " + s.Doc + "\n\n")
		}
	}
	return b.String()
}
