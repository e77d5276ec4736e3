package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// ParseBytes reads a byte quantity: a plain number, or one with a binary
// (Ki, Mi, Gi, Ti) or decimal (k/K, M, G, T) suffix, as in Kubernetes
// quantities: "64Mi", "1G", "4096".
func ParseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<63-1)/n) {
		return 0, fmt.Errorf("byte quantity %q: want a non-negative number with an optional Ki/Mi/Gi/Ti or K/M/G/T suffix: %w", s, errdefs.ErrInvalidArgument)
	}
	return n * mult, nil
}

// FormatBytes writes n in the largest binary unit dividing it exactly
// ("64Mi"), or in bytes.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
