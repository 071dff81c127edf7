package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// render executes page with data and sends it; a template error is a
// 500 and logged, never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, status int, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("dashboard: rendering a page failed", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	data = append(data, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// errorPage is error.html's data.
type errorPage struct {
	Name, Title, Message string
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "error.html", http.StatusNotFound, errorPage{Name: s.opts.Name, Title: "Not found",
		Message: "No such page or machine on this storage unit."})
}

// funcs are the templates' functions; times are shown in loc, the zone of
// snapshot names.
func funcs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"bytes": formatBytes,
		"optBytes": func(p *int64) string {
			if p == nil {
				return "–"
			}
			return formatBytes(*p)
		},
		"age": formatAge,
		"since": func(now, t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return formatAge(now.Sub(t)) + " ago"
		},
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "–"
			}
			return t.In(loc).Format("2006-01-02 15:04:05")
		},
		"ptime": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return "never"
			}
			return t.In(loc).Format("2006-01-02 15:04:05")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"dur": func(d time.Duration) string {
			if d <= 0 {
				return "–"
			}
			return formatSeconds(d.Seconds())
		},
		"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
		"rate":  func(f float64) string { return formatBytes(int64(f)) + "/s" },
		"secs":  formatSeconds,
		"first": firstLine,
		"label": stateLabel,
		"add":   func(a, b int) int { return a + b },
		"float": func(i int) float64 { return float64(i) },
		"sub":   func(a, b int64) int64 { return a - b },
		"join":  strings.Join,
		"deref": func(p *int64) int64 {
			if p == nil {
				return 0
			}
			return *p
		},
	}
}

// formatBytes is a size as df -h would round it, in binary units.
func formatBytes(n int64) string {
	if n < 0 {
		return "unknown"
	}
	return humanize.IBytes(uint64(n))
}

func formatBytesF(f float64) string { return formatBytes(int64(math.Round(f))) }

// formatAge shows a duration to two units: 3d4h, 5h12m, 42s.
func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// formatSeconds is a duration in seconds: to the hundredth under ten
// seconds (a small backup takes less than one), else as formatAge.
func formatSeconds(f float64) string {
	if f > 0 && f < 10 {
		return strconv.FormatFloat(f, 'f', 2, 64) + "s"
	}
	return formatAge(time.Duration(f * float64(time.Second)))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// stateLabel is a state as the pages write it, in words a terminal
// browser shows without colour.
func stateLabel(state string) string {
	switch state {
	case StateStale:
		return "STALE"
	case StateNever:
		return "NEVER BACKED UP"
	case StateFailing:
		return "FAILING"
	case StateWarning:
		return "OLD"
	case StateOrphan:
		return "ORPHAN"
	case StateOK:
		return "ok"
	}
	return state
}
