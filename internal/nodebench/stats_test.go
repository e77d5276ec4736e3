package nodebench

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// summary holds nearest-rank percentiles of a set of durations.
type summary struct {
	n             int
	p50, p99, max time.Duration
}

// summarize returns the nearest-rank p50, p99 and maximum of ds (zero for
// an empty set): the p-th percentile is the smallest value with at least p %
// of the values at or below it, so p99 of 100 values is the 99th smallest.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return summary{n: len(s), p50: rank(s, 50), p99: rank(s, 99), max: s[len(s)-1]}
}

func rank(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s summary) String() string {
	return fmt.Sprintf("n=%d p50=%.1fms p99=%.1fms max=%.1fms", s.n, ms(s.p50), ms(s.p99), ms(s.max))
}

// histogram counts ds in coarse buckets, on one line (the testing package
// keeps only the first 10 lines of a benchmark's log).
func histogram(ds []time.Duration) string {
	bounds := []time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2500 * time.Millisecond, 5 * time.Second, 10 * time.Second}
	counts := make([]int, len(bounds)+1)
	for _, d := range ds {
		// The first bound >= d: a value equal to a bound belongs to that
		// bucket (≤ bound).
		i, _ := slices.BinarySearch(bounds, d)
		counts[i]++
	}
	var parts []string
	for i, c := range counts {
		if c == 0 {
			continue
		}
		label := ">" + bounds[len(bounds)-1].String()
		if i < len(bounds) {
			label = "≤" + bounds[i].String()
		}
		parts = append(parts, fmt.Sprintf("%s:%d", label, c))
	}
	return strings.Join(parts, " ")
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 ms, unsorted
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := summary{n: 100, p50: 50 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %v, want %v", got, want)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("summarize sorted its argument in place")
	}
	if got := summarize([]time.Duration{7}); got != (summary{n: 1, p50: 7, p99: 7, max: 7}) {
		t.Errorf("summarize(one value) = %v", got)
	}
	if got := summarize(nil); got != (summary{}) {
		t.Errorf("summarize(nil) = %v", got)
	}
	// 10 values: p99 is the largest, p50 the 5th.
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := summarize(ten); got.p50 != 5 || got.p99 != 10 {
		t.Errorf("summarize(1..10) = %+v, want p50 5 p99 10", got)
	}
}

func TestHistogram(t *testing.T) {
	h := histogram([]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 11 * time.Millisecond, 20 * time.Second})
	if want := "≤10ms:2 ≤25ms:1 >10s:1"; h != want {
		t.Errorf("histogram = %q, want %q", h, want)
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\twasilet\nVmRSS:\t  123456 kB\nRssAnon:\t   100000 kB\nRssShmem:\t  0 kB\nRssFile:\t    23456 kB\nThreads:\t17\n"
	got, err := parseStatus([]byte(in))
	if err != nil || got != (memStatus{vmRSS: 123456, rssAnon: 100000, rssFile: 23456, threads: 17}) {
		t.Errorf("parseStatus = %+v, %v", got, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("parseStatus without RssAnon: no error")
	}
	self, err := readMem(os.Getpid())
	if err != nil || self.vmRSS <= 0 || self.threads <= 0 {
		t.Errorf("readMem(self) = %+v, %v", self, err)
	}
}
