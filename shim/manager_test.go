package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGroupOf(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations string
		grouping    string
		want, err   string
	}{
		{name: "ctr container", annotations: `{}`, want: "c1"},
		{name: "explicit group", annotations: `{"io.containerd.wasilet.v1.group":"g","io.kubernetes.cri.sandbox-id":"s1"}`, want: "g"},
		{name: "cri pod, default", annotations: `{"io.kubernetes.cri.sandbox-id":"s1"}`, want: nodeGroup},
		{name: "cri pod, node", annotations: `{"io.kubernetes.cri.sandbox-id":"s1"}`, grouping: "node", want: nodeGroup},
		{name: "cri pod, pod", annotations: `{"io.kubernetes.cri.sandbox-id":"s1"}`, grouping: "pod", want: "s1"},
		{name: "bad grouping", annotations: `{"io.kubernetes.cri.sandbox-id":"s1"}`, grouping: "rack", err: `WASILET_SHIM_GROUPING="rack"`},
		{name: "bad spec", annotations: `[`, err: "parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"annotations":`+tc.annotations+`}`), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := groupOf(dir, "c1", tc.grouping)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("groupOf: %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("groupOf: %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
