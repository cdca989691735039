package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// parse decodes an SVG document, failing on malformed XML, and returns its
// root element name and the data-name of every polyline.
func parse(t *testing.T, doc []byte) (root string, series []string, polylinePoints []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
			if se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Fatalf("root namespace %q, want SVG's", se.Name.Space)
			}
		}
		if se.Name.Local == "polyline" {
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "data-name":
					series = append(series, a.Value)
				case "points":
					polylinePoints = append(polylinePoints, a.Value)
				}
			}
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		panels []Panel
		want   []string // series names, in order
		points []int    // points drawn per series
	}{
		{
			name: "throughput and a log CDF",
			panels: []Panel{
				{Title: "throughput", XLabel: "offered /s", YLabel: "/s", Series: []Series{
					{Name: "kapsel acks/s", Points: []Point{{500, 500}, {1000, 990}, {2000, 1700}}},
					{Name: "river acks/s", Dashed: true, Points: []Point{{500, 480}, {1000, 700}}},
				}},
				{Title: "CDF", XLabel: "ms", YLabel: "fraction", LogX: true, Series: []Series{
					{Name: "ack → destination <p99>", Points: []Point{{0, 0.1}, {0.5, 0.2}, {3, 0.9}, {40, 1}}},
				}},
			},
			want:   []string{"kapsel acks/s", "river acks/s", "ack → destination <p99>"},
			points: []int{3, 2, 3}, // the 0 cannot be drawn on a log axis
		},
		{
			name:   "a series with one point",
			panels: []Panel{{Title: "one", Series: []Series{{Name: "solo", Points: []Point{{7, 7}}}}}},
			want:   []string{"solo"},
			points: []int{1},
		},
		{
			name:   "an empty series",
			panels: []Panel{{Title: "none", LogY: true, Series: []Series{{Name: "empty"}}}},
			want:   []string{"empty"},
			points: []int{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := Write(&buf, "kapsel-bench & <river>", tt.panels); err != nil {
				t.Fatal(err)
			}
			root, series, pts := parse(t, buf.Bytes())
			if root != "svg" {
				t.Fatalf("root element %q, want svg", root)
			}
			if strings.Join(series, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("series %q, want %q", series, tt.want)
			}
			for i, p := range pts {
				if got := len(strings.Fields(p)); got != tt.points[i] {
					t.Errorf("series %q: %d points drawn, want %d", series[i], got, tt.points[i])
				}
				if strings.Contains(p, "NaN") || strings.Contains(p, "Inf") {
					t.Errorf("series %q has non-finite coordinates: %s", series[i], p)
				}
			}
			if !strings.Contains(buf.String(), "kapsel-bench &amp; &lt;river&gt;") {
				t.Fatal("title not escaped")
			}
		})
	}
}

func TestTicks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    axis
		want []float64
	}{
		{"linear 0..100", axis{lo: 0, hi: 100}, []float64{0, 20, 40, 60, 80, 100}},
		{"linear 0..7", axis{lo: 0, hi: 7}, []float64{0, 2, 4, 6}},
		{"log 0.1..100", axis{lo: -1, hi: 2, log: true}, []float64{0.1, 1, 10, 100}},
	}
	for _, tt := range tests {
		got := tt.a.ticks()
		if len(got) != len(tt.want) {
			t.Fatalf("%s: ticks %v, want %v", tt.name, got, tt.want)
		}
		for i := range got {
			if d := got[i] - tt.want[i]; d > 1e-9 || d < -1e-9 {
				t.Fatalf("%s: ticks %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}
