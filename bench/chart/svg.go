// Package chart writes line charts as standalone SVG: panels side by side,
// each with its own axes (linear or logarithmic) and named series. It uses
// only the standard library; text is escaped with encoding/xml.
package chart

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Point is one (x, y) value of a series.
type Point struct{ X, Y float64 }

// Series is a named line. Dashed draws it dashed; Color is an SVG color
// (defaults to one from a palette by position).
type Series struct {
	Name   string
	Color  string
	Dashed bool
	Points []Point
}

// Panel is one chart: a title, axis labels and its series. LogX and LogY
// put an axis on a base-10 logarithmic scale (values ≤ 0 are skipped there).
type Panel struct {
	Title          string
	XLabel, YLabel string
	LogX, LogY     bool
	Series         []Series
}

const (
	panelW, panelH = 460, 340
	left, right    = 64, 16
	top, bottom    = 36, 110 // the legend sits below the x axis
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// Write draws panels side by side under a title.
func Write(w io.Writer, title string, panels []Panel) error {
	bw := bufio.NewWriter(w)
	width := panelW * max(len(panels), 1)
	// Tall enough for the longest legend: two entries a row, 14 px each,
	// starting 46 px below the plot (see drawPanel).
	rows := 0
	for _, p := range panels {
		rows = max(rows, (len(p.Series)+1)/2)
	}
	height := 30 + max(panelH, panelH-bottom+46+rows*14+8)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(bw, `<text x="%d" y="18" font-size="14" text-anchor="middle">%s</text>`+"\n", width/2, esc(title))
	for i, p := range panels {
		fmt.Fprintf(bw, `<g transform="translate(%d,30)">`+"\n", i*panelW)
		drawPanel(bw, p)
		bw.WriteString("</g>\n")
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

// axis maps data values to pixels on one axis.
type axis struct {
	lo, hi   float64 // in data units (log10 of them on a log axis)
	log      bool
	pxLo, px float64 // pixel of lo, and length in pixels (negative for y)
}

func (a axis) ok(v float64) bool { return !a.log || v > 0 }

func (a axis) pos(v float64) float64 {
	if a.log {
		v = math.Log10(v)
	}
	return a.pxLo + (v-a.lo)/(a.hi-a.lo)*a.px
}

// ticks returns about five values to label.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for e := math.Floor(a.lo); e <= math.Ceil(a.hi); e++ {
			if e >= a.lo-1e-9 && e <= a.hi+1e-9 {
				out = append(out, math.Pow(10, e))
			}
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 5)
	for v := math.Ceil(a.lo/step) * step; v <= a.hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// newAxis spans the values given, padded; a log axis spans whole decades.
func newAxis(vals []float64, log bool, pxLo, px float64) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if log {
			if v <= 0 {
				continue
			}
			v = math.Log10(v)
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	switch {
	case math.IsInf(lo, 1):
		lo, hi = 0, 1
	case log:
		lo, hi = math.Floor(lo), math.Ceil(hi)
		if hi == lo {
			hi = lo + 1
		}
	default:
		if lo > 0 {
			lo = 0 // throughput and latency read best from zero
		}
		if hi == lo {
			hi = lo + 1
		}
		hi += (hi - lo) * 0.05
	}
	return axis{lo: lo, hi: hi, log: log, pxLo: pxLo, px: px}
}

func drawPanel(w *bufio.Writer, p Panel) {
	var xs, ys []float64
	for _, s := range p.Series {
		for _, pt := range s.Points {
			xs, ys = append(xs, pt.X), append(ys, pt.Y)
		}
	}
	plotW, plotH := float64(panelW-left-right), float64(panelH-top-bottom)
	ax := newAxis(xs, p.LogX, left, plotW)
	ay := newAxis(ys, p.LogY, top+plotH, -plotH)

	fmt.Fprintf(w, `<text x="%d" y="16" font-size="12" text-anchor="middle" font-weight="bold">%s</text>`+"\n", panelW/2, esc(p.Title))
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%g" height="%g" fill="none" stroke="#444"/>`+"\n", left, top, plotW, plotH)
	for _, t := range ax.ticks() {
		x := ax.pos(t)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x, top, x, top+plotH)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+plotH+14, label(t))
	}
	for _, t := range ay.ticks() {
		y := ay.pos(t)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y, left+plotW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, y+4, label(t))
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+plotW/2, top+plotH+30, esc(p.XLabel))
	fmt.Fprintf(w, `<text transform="translate(14,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+plotH/2, esc(p.YLabel))

	for i, s := range p.Series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		var pts []string
		for _, pt := range s.Points {
			if ax.ok(pt.X) && ay.ok(pt.Y) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", ax.pos(pt.X), ay.pos(pt.Y)))
			}
		}
		fmt.Fprintf(w, `<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`+"\n",
			esc(s.Name), color, dash, strings.Join(pts, " "))
		if len(pts) <= 20 { // markers where points are few
			for _, xy := range pts {
				x, y, _ := strings.Cut(xy, ",")
				fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, x, y, color)
			}
			w.WriteString("\n")
		}
		// Legend: two columns under the x-axis label.
		lx := float64(left) + float64(i%2)*plotW/2
		ly := top + plotH + 46 + float64(i/2)*14
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`, lx, ly-4, lx+18, ly-4, color, dash)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+22, ly, esc(s.Name))
	}
}

// label formats a tick value compactly.
func label(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%gk", v/1e3)
	default:
		return fmt.Sprintf("%g", math.Round(v*1000)/1000)
	}
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
