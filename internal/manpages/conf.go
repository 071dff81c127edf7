package manpages

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
)

// Conf is turku-storage.conf(5), made from the Markdown configuration
// reference (docs/configuration.md): its title dropped, its sections
// (##) as the page's sections, its tables of keys as tables. This is the
// one place that knows where the page's text comes from.
func Conf(markdown []byte, hdr Header) []byte {
	body := string(markdown)
	// The reference's own title: the page has NAME instead.
	if strings.HasPrefix(body, "# ") {
		_, body, _ = strings.Cut(body, "\n")
	}
	body = regexp.MustCompile(`(?m)^## (.+)$`).ReplaceAllStringFunc(body, strings.ToUpper)
	body = keyTables(body)
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

// keyTables turns the reference's tables of keys (| key | default |
// meaning |) into definition lists: a man page's table cannot wrap text
// that long within a terminal's width.
func keyTables(md string) string {
	var out []string
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
			out = append(out, line)
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 || cells[0] == "key" || strings.HasPrefix(cells[0], "---") {
			continue // the header row and its rule
		}
		out = append(out, cells[0]+" (default: "+cells[1]+")", ": "+cells[2], "")
	}
	return strings.Join(out, "\n")
}
