package pods

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/wasilet/wasilet/internal/atomicfile"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeFileAtomic writes data to path with atomicfile.WriteFile: readers
// see the old or the new content, never a mix. It does not fsync: state
// survives the node process dying (what restart recovery is for), and a
// machine crash restarts pods anyway; syncing every status change would cost
// milliseconds per pod.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, data, 0o600)
}
