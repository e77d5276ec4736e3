package benchreport

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	wasiletColor  = color.RGBA{R: 0x65, G: 0x4f, B: 0xf0, A: 0xff}
	baselineColor = color.RGBA{R: 0x90, G: 0x90, B: 0x90, A: 0xff}
	curveColors   = []color.Color{wasiletColor, baselineColor, color.RGBA{R: 0xe0, G: 0x6c, B: 0x00, A: 0xff}, color.RGBA{R: 0x00, G: 0x96, B: 0x88, A: 0xff}}
)

// Plot draws r into path (SVG or PNG by its extension): the result's curves
// when it has any, else the distributions of wasilet's and the baseline's
// samples as empirical CDFs. It reports false when r has nothing to plot.
func Plot(r Result, path string) (bool, error) {
	if !r.plottable() {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = r.Group + ": " + r.Metric
	p.Legend.Top = true
	p.Legend.Left = true
	if len(r.Curves) > 0 {
		p.X.Label.Text, p.Y.Label.Text = r.Curves[0].X, r.Curves[0].Y
		for i, c := range r.Curves {
			pts := make(plotter.XYs, 0, len(c.Points))
			for _, pt := range c.Points {
				pts = append(pts, plotter.XY{X: pt[0], Y: pt[1]})
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return false, fmt.Errorf("%s: %w", c.Name, err)
			}
			l.Color = curveColors[i%len(curveColors)]
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(c.Name, l)
		}
	} else {
		p.X.Label.Text = r.Unit
		p.Y.Label.Text = "fraction of samples ≤ x"
		p.Y.Min, p.Y.Max = 0, 1
		for _, s := range []struct {
			name string
			xs   []float64
			c    color.Color
		}{{"wasilet", r.Wasilet, wasiletColor}, {r.BaselineName, r.Baseline, baselineColor}} {
			xs := finite(s.xs)
			if len(xs) == 0 {
				continue
			}
			l, err := plotter.NewLine(cdf(xs))
			if err != nil {
				return false, fmt.Errorf("%s: %w", s.name, err)
			}
			l.Color = s.c
			l.Width = vg.Points(1.5)
			l.StepStyle = plotter.PostStep
			p.Add(l)
			p.Legend.Add(fmt.Sprintf("%s (p50 %s)", s.name, num(Percentile(xs, 50))), l)
		}
		if r.baselineFar() {
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
			p.X.Label.Text += " (log scale)"
		}
	}
	p.Add(plotter.NewGrid())
	if err := p.Save(16*vg.Centimeter, 9*vg.Centimeter, path); err != nil {
		return false, err
	}
	return true, nil
}

// baselineFar says whether the two distributions lie an order of magnitude
// or more apart (then a log scale shows both).
func (r Result) baselineFar() bool {
	w, b := finite(r.Wasilet), finite(r.Baseline)
	if len(w) == 0 || len(b) == 0 {
		return false
	}
	lo := min(slices.Min(w), slices.Min(b))
	hi := max(slices.Max(w), slices.Max(b))
	return lo > 0 && hi/lo >= 10
}

func cdf(xs []float64) plotter.XYs {
	s := slices.Clone(xs)
	slices.Sort(s)
	pts := make(plotter.XYs, 0, len(s)+1)
	pts = append(pts, plotter.XY{X: s[0], Y: 0})
	for i, x := range s {
		pts = append(pts, plotter.XY{X: x, Y: float64(i+1) / float64(len(s))})
	}
	return pts
}
