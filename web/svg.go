package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// point is one backup in a plot: when it finished and its figure.
type point struct {
	t time.Time
	v float64
}

// Plot geometry, in SVG user units; the SVG scales to its box.
const (
	plotW, plotH           = 640, 180
	plotLeft, plotRight    = 70, 12
	plotTop, plotBottom    = 24, 30
	plotInnerW, plotInnerH = plotW - plotLeft - plotRight, plotH - plotTop - plotBottom
)

// plotSVG draws pts (oldest first) as a line with a dot per backup, the
// y axis from 0 to the largest value, labelled with format, and the first
// and last times under the x axis. Every text is escaped; the SVG uses
// presentation attributes only, nothing a style-src policy blocks.
func plotSVG(title string, pts []point, format func(float64) string, loc *time.Location) template.HTML {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, plotW, plotH, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13" fill="currentColor">%s</text>`, plotLeft, esc(title))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="currentColor" stroke-opacity="0.5"/>`, plotLeft, plotTop+plotInnerH, plotLeft+plotInnerW, plotTop+plotInnerH)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="currentColor" stroke-opacity="0.5"/>`, plotLeft, plotTop, plotLeft, plotTop+plotInnerH)
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="currentColor">no figures recorded</text>`, plotLeft+10, plotTop+plotInnerH/2)
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	t0, t1 := pts[0].t, pts[0].t
	top := 0.0
	for _, p := range pts {
		if p.t.Before(t0) {
			t0 = p.t
		}
		if p.t.After(t1) {
			t1 = p.t
		}
		top = max(top, p.v)
	}
	if top == 0 {
		top = 1
	}
	span := t1.Sub(t0)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return plotLeft + plotInnerW/2
		}
		return plotLeft + float64(plotInnerW)*float64(t.Sub(t0))/float64(span)
	}
	y := func(v float64) float64 { return plotTop + float64(plotInnerH)*(1-v/top) }
	// y axis: 0, half and the top, with grid lines.
	for _, f := range []float64{0, 0.5, 1} {
		yy := y(top * f)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="currentColor">%s</text>`, plotLeft-6, yy+4, esc(format(top*f)))
		if f > 0 {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="currentColor" stroke-opacity="0.15"/>`, plotLeft, yy, plotLeft+plotInnerW, yy)
		}
	}
	const layout = "2006-01-02 15:04"
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="currentColor">%s</text>`, plotLeft, plotH-8, esc(t0.In(loc).Format(layout)))
	if span > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="currentColor">%s</text>`, plotLeft+plotInnerW, plotH-8, esc(t1.In(loc).Format(layout)))
	}
	if len(pts) > 1 {
		b.WriteString(`<polyline fill="none" stroke="#2b6cb0" stroke-width="2" points="`)
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p.t), y(p.v))
		}
		b.WriteString(`"/>`)
	}
	for _, p := range pts {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#2b6cb0"><title>%s: %s</title></circle>`,
			x(p.t), y(p.v), esc(p.t.In(loc).Format(layout)), esc(format(p.v)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
