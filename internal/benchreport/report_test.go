package benchreport

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {0, 1}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("no samples should give NaN")
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its input")
	}
}

func TestTargets(t *testing.T) {
	r := Result{Wasilet: []float64{10, 20, 40}, Baseline: []float64{400, 500, 600}, Target: Target{Stat: "p99", Max: 50, MinRatio: 20}}
	if got := r.Ratio(); got != 25 {
		t.Errorf("ratio %v, want 25", got)
	}
	if m := r.Met(); m == nil || !*m {
		t.Errorf("met %v, want true", m)
	}
	r.Target.Max = 30 // p99 is 40
	if m := r.Met(); m == nil || *m {
		t.Errorf("met %v, want false (p99 over max)", m)
	}
	r.Target.Max, r.Baseline = 0, nil
	if m := r.Met(); m != nil {
		t.Errorf("met %v without a baseline, want n/a", *m)
	}
	hb := Result{Wasilet: []float64{100}, Baseline: []float64{20}, HigherIsBetter: true, Target: Target{MinRatio: 4, Max: 90}}
	if m := hb.Met(); hb.Ratio() != 5 || m == nil || !*m {
		t.Errorf("higher is better: ratio %v met %v", hb.Ratio(), m)
	}
}

func TestRenderAndPlot(t *testing.T) {
	rs := []Result{
		{Group: "Module start", Metric: "warm | whole process", Unit: "ms", Wasilet: []float64{1, 2, 3}, Baseline: []float64{10, 20, 30}, BaselineName: "other", Target: Target{MinRatio: 5, Text: "≥ 5×"}, Benchmark: "BenchmarkX", Passed: true,
			When: time.Date(2026, 12, 3, 7, 38, 0, 0, time.UTC), Commit: "13bb7b0-dirty"},
		{Group: "Pod start", Metric: "cached", Unit: "ms", Wasilet: []float64{4}, NoBaseline: "cgroup v1 refused", Benchmark: "BenchmarkY", Passed: false},
		{Group: "Density", Metric: "RSS", Unit: "MiB", Wasilet: []float64{10}, Curves: []Curve{{Name: "wasilet", X: "pods", Y: "MiB", Points: [][2]float64{{0, 1}, {10, 20}}}}},
	}
	Sort(rs)
	if rs[0].Group != "Pod start" || rs[1].Group != "Density" {
		t.Fatalf("order %s, %s", rs[0].Group, rs[1].Group)
	}
	dir := t.TempDir()
	plots := map[int]string{}
	for i, r := range rs {
		ok, err := Plot(r, filepath.Join(dir, r.Slug()+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			plots[i] = r.Slug() + ".svg"
		}
	}
	if len(plots) != 2 {
		t.Errorf("plots %v, want the density curve and the module-start CDF", plots)
	}
	for _, f := range plots {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(b), "<svg") {
			t.Errorf("%s: not an SVG (%v)", f, err)
		}
	}
	md := Render(rs, Page{Machine: "test", Plots: plots, Command: "just bench"})
	for _, want := range []string{
		"| Module start: warm \\| whole process | p50 2.00 / p99 3.00 ms (n=3) | other: p50 20.0 / p99 30.0 ms (n=3) | 10.0× | ≥ 5× | yes |",
		"not measured: cgroup v1 refused",
		"the benchmark **failed**",
		"![RSS](density-rss.svg)",
		"- measured by `BenchmarkX` on 2026-12-03 at commit 13bb7b0-dirty\n",
		"- measured by `BenchmarkY` (the benchmark",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if tb := Table(rs); !strings.Contains(tb, "10.0×") || !strings.Contains(tb, "not measured") {
		t.Errorf("table:\n%s", tb)
	}
}
