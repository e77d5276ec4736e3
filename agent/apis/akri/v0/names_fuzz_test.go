package v0

import (
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzNames: for any Configuration, device id and node, DeviceHash is six
// lowercase hex digits, the same on every node for a shared device and that
// of id+node for an unshared one; InstanceHash recovers it from
// InstanceName. For any other instance name, InstanceHash is "" or the six
// hex digits the name ends with after <configuration>-.
func FuzzNames(f *testing.F) {
	f.Add("akri-debug-echo", "foo0", true, "", "node-b", "akri-debug-echo-8120fe")
	f.Add("akri-debug-echo", "my_local_device", false, "my_node", "my_other_node", "akri-debug-echo-E77DB4")
	f.Add("cfg", `"foo0"`, true, "n", "m", "cfg-aae70c-x")
	f.Add("", "", false, "", "", "-")
	f.Fuzz(func(t *testing.T, cfg, id string, shared bool, node, other, instance string) {
		h := DeviceHash(id, shared, node)
		if _, err := hex.DecodeString(h); len(h) != 6 || err != nil || strings.ToLower(h) != h {
			t.Fatalf("DeviceHash(%q, %v, %q) = %q, not 6 lowercase hex digits", id, shared, node, h)
		}
		if shared && DeviceHash(id, true, other) != h {
			t.Fatalf("DeviceHash(%q, true, …) depends on the node: %q on %q, %q on %q", id, h, node, DeviceHash(id, true, other), other)
		}
		if !shared && DeviceHash(id+node, true, "") != h {
			t.Fatalf("DeviceHash(%q, false, %q) = %q, not the hash of id+node %q", id, node, h, DeviceHash(id+node, true, ""))
		}
		name := InstanceName(cfg, id, shared, node)
		if name != cfg+"-"+h || InstanceHash(cfg, name) != h {
			t.Fatalf("InstanceName(%q, %q, %v, %q) = %q; InstanceHash of it = %q, want %q", cfg, id, shared, node, name, InstanceHash(cfg, name), h)
		}
		if got := InstanceHash(cfg, instance); got != "" {
			if _, err := hex.DecodeString(got); len(got) != 6 || err != nil || instance != cfg+"-"+got {
				t.Fatalf("InstanceHash(%q, %q) = %q", cfg, instance, got)
			}
		}
	})
}
