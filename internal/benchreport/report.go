package benchreport

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ReportEnv names the file benchmarks append their results to.
const ReportEnv = "WASILET_BENCH_REPORT"

// SmokeEnv, when "1", asks every benchmark for its smallest size.
const SmokeEnv = "WASILET_BENCH_SMOKE"

// Smoke reports whether the benchmarks run in their smoke form.
func Smoke() bool { return os.Getenv(SmokeEnv) == "1" }

// Size is full, or smoke when the benchmarks run in their smoke form; an
// environment variable named env (if set to a positive integer) overrides
// both.
func Size(env string, full, smoke int) int {
	if env != "" {
		var n int
		if _, err := fmt.Sscan(os.Getenv(env), &n); err == nil && n > 0 {
			return n
		}
	}
	if Smoke() {
		return smoke
	}
	return full
}

// Result is one metric measured for wasilet and, in the same run, for its
// baseline. Samples are in Unit; lower is better unless HigherIsBetter.
type Result struct {
	Group  string `json:"group"`  // the report's section: "Pod start", "Density", …
	Metric string `json:"metric"` // the row: what was measured, as a user sees it
	Unit   string `json:"unit"`   // "ms", "s", "MiB", "% of a core", …

	Wasilet      []float64 `json:"wasilet"`
	Baseline     []float64 `json:"baseline,omitempty"`
	BaselineName string    `json:"baselineName,omitempty"` // what ran instead, with its version
	// NoBaseline says exactly why the baseline could not be measured here.
	NoBaseline string `json:"noBaseline,omitempty"`

	Target         Target `json:"target"`
	HigherIsBetter bool   `json:"higherIsBetter,omitempty"`

	Method   string            `json:"method,omitempty"`   // how it was measured (one or two sentences)
	Versions map[string]string `json:"versions,omitempty"` // component → version, for the report
	Curves   []Curve           `json:"curves,omitempty"`   // plotted beside the row (e.g. RSS against pods)

	Benchmark string    `json:"benchmark"` // the Go benchmark that measured it
	Recorded  time.Time `json:"recorded"`  // when Record was called (the report's order within a group)
	Passed    bool      `json:"passed"`
	When      time.Time `json:"when"`
	Commit    string    `json:"commit,omitempty"` // git describe of the checkout measured
	Smoke     bool      `json:"smoke,omitempty"`
}

// Target is what the figure is held to: wasilet's Stat at most Max (at
// least, for HigherIsBetter), and the baseline's p50 over wasilet's p50 at
// least MinRatio (its inverse for HigherIsBetter). Zero fields hold nothing.
type Target struct {
	Stat     string  `json:"stat,omitempty"` // "p50", "p99", "max", "mean" (default "p50")
	Max      float64 `json:"max,omitempty"`
	MinRatio float64 `json:"minRatio,omitempty"`
	Text     string  `json:"text,omitempty"` // the target as the issue states it
}

// Curve is a series of (x, y) points for a line plot.
type Curve struct {
	Name   string       `json:"name"`
	X      string       `json:"x"` // axis label, e.g. "pods running"
	Y      string       `json:"y"` // axis label, e.g. "node RSS (MiB)"
	Points [][2]float64 `json:"points"`
}

var mu sync.Mutex

// Record logs r in the benchmark's output and, once the benchmark is over
// (so that Passed is known), appends it to $WASILET_BENCH_REPORT.
func Record(b testing.TB, r Result) {
	b.Helper()
	r.Benchmark = b.Name()
	r.Recorded = time.Now().UTC()
	r.Smoke = Smoke()
	r.Commit = commit()
	b.Logf("bench: %s", r.Line())
	path := os.Getenv(ReportEnv)
	if path == "" {
		return
	}
	b.Cleanup(func() {
		r.Passed, r.When = !b.Failed(), time.Now().UTC()
		if err := AppendJSON(path, r); err != nil {
			b.Errorf("bench record: %v", err)
		}
	})
}

// commit is `git describe --always --dirty` of the working directory's
// checkout, once per process ("" outside one).
var commit = sync.OnceValue(func() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
})

// AppendJSON appends v to the file at path as one line of JSON (a record of
// a report that several tests write to, in one process or several).
func AppendJSON(path string, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read parses a report file written by Record.
func Read(path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Result
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Ms is d in milliseconds, the unit of most latency samples.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// MsOf converts durations to millisecond samples.
func MsOf(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = Ms(d)
	}
	return out
}

// Percentile is the p-th percentile (0–100) of xs by the nearest-rank
// method; NaN for no samples.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Stat is the named statistic of xs: p50, p90, p99, max, min or mean.
func Stat(xs []float64, stat string) float64 {
	switch stat {
	case "", "p50":
		return Percentile(xs, 50)
	case "p90":
		return Percentile(xs, 90)
	case "p99":
		return Percentile(xs, 99)
	case "max":
		return Percentile(xs, 100)
	case "min":
		return Percentile(xs, 0)
	case "mean":
		if len(xs) == 0 {
			return math.NaN()
		}
		var sum float64
		for _, x := range xs {
			sum += x
		}
		return sum / float64(len(xs))
	}
	return math.NaN()
}

// Ratio is how many times better wasilet is than the baseline (baseline p50
// over wasilet p50; the inverse when higher is better); NaN without both.
func (r Result) Ratio() float64 {
	if len(r.Wasilet) == 0 || len(r.Baseline) == 0 {
		return math.NaN()
	}
	w, b := Stat(r.Wasilet, "p50"), Stat(r.Baseline, "p50")
	if r.HigherIsBetter {
		w, b = b, w
	}
	if w == 0 {
		return math.Inf(1)
	}
	return b / w
}

// Met says whether the target holds; nil when the result has no target or
// lacks the figures to judge it (a missing baseline).
func (r Result) Met() *bool {
	if r.Target.Max == 0 && r.Target.MinRatio == 0 {
		return nil
	}
	ok := true
	if r.Target.Max != 0 {
		v := Stat(r.Wasilet, r.Target.Stat)
		if math.IsNaN(v) {
			return nil
		}
		if r.HigherIsBetter {
			ok = ok && v >= r.Target.Max
		} else {
			ok = ok && v <= r.Target.Max
		}
	}
	if r.Target.MinRatio != 0 {
		ratio := r.Ratio()
		if math.IsNaN(ratio) {
			return nil
		}
		ok = ok && ratio >= r.Target.MinRatio
	}
	return &ok
}

// Figure is a sample set as the table shows it: "p50 12.3 / p99 45.6 ms (n=100)",
// or the single value.
func Figure(xs []float64, unit string) string {
	switch len(xs) {
	case 0:
		return "—"
	case 1:
		return fmt.Sprintf("%s %s", num(xs[0]), unit)
	}
	return fmt.Sprintf("p50 %s / p99 %s %s (n=%d)", num(Percentile(xs, 50)), num(Percentile(xs, 99)), unit, len(xs))
}

// Line is r on one line, for the benchmark's log.
func (r Result) Line() string {
	s := fmt.Sprintf("%s — %s: wasilet %s", r.Group, r.Metric, Figure(r.Wasilet, r.Unit))
	switch {
	case len(r.Baseline) > 0:
		s += fmt.Sprintf("; %s %s; ratio %s", r.BaselineName, Figure(r.Baseline, r.Unit), ratio(r.Ratio()))
	case r.NoBaseline != "":
		s += "; no baseline: " + r.NoBaseline
	}
	if m := r.Met(); m != nil {
		s += fmt.Sprintf("; target %s met: %v", r.Target.Text, *m)
	}
	return s
}

func ratio(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return num(x) + "×"
}

func num(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x):
		return "—"
	case math.IsInf(x, 0):
		return "∞"
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
