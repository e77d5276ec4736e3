// Command bench renders the benchmarks' records (written through
// internal/benchreport.Record) into the summary table on stdout and, given an
// output page, into Markdown with one plot per result beside it.
//
//	go run ./hack/bench RECORDS [OUT.md]
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasilet/wasilet/internal/benchreport"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: bench RECORDS [OUT.md]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(records string, out []string) error {
	rs, err := benchreport.Read(records)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("no benchmark recorded anything (were they skipped?)")
	}
	benchreport.Sort(rs)
	fmt.Print(benchreport.Table(rs))
	if len(out) == 0 {
		return nil
	}
	page := out[0]
	// Plots go to a folder named after the page: docs/benchmarks.md → docs/benchmarks/.
	plotDir := strings.TrimSuffix(page, filepath.Ext(page))
	if err := os.RemoveAll(plotDir); err != nil {
		return err
	}
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return err
	}
	plots := map[int]string{}
	seen := map[string]int{}
	for i, r := range rs {
		name := r.Slug()
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, seen[name])
		}
		file := filepath.Join(plotDir, name+".svg")
		ok, err := benchreport.Plot(r, file)
		if err != nil {
			return fmt.Errorf("plot of %s: %w", r.Metric, err)
		}
		if ok {
			plots[i] = filepath.Base(plotDir) + "/" + name + ".svg"
		}
	}
	md := benchreport.Render(rs, benchreport.Page{Machine: benchreport.Machine(), Plots: plots, Command: "just bench"})
	if err := os.WriteFile(page, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Printf("bench: %d results, %d plots → %s\n", len(rs), len(plots), page)
	return nil
}
