package v0

import "testing"

// Vectors from Akri 0.13 (design §4), and the akri-on-krustlet demo's aae70c
// (the id "foo0" with the JSON quotes its proxy kept).
func TestDeviceHashVectors(t *testing.T) {
	for _, c := range []struct {
		id     string
		shared bool
		node   string
		want   string
	}{
		{"foo0", true, "", "8120fe"},
		{"bar0", true, "", "d46b65"},
		{"bar1", true, "", "ab76e6"},
		{"my_shared_device", true, "ignored", "4294ea"},
		{"my_local_device", false, "my_node", "e77db4"},
		{"my_local_device", false, "my_other_node", "099763"},
		{`"foo0"`, true, "", "aae70c"},
	} {
		if got := DeviceHash(c.id, c.shared, c.node); got != c.want {
			t.Errorf("DeviceHash(%q, shared=%v, %q) = %s, want %s", c.id, c.shared, c.node, got, c.want)
		}
	}
	if got := InstanceName("akri-debug-echo", "foo0", true, "n"); got != "akri-debug-echo-8120fe" {
		t.Errorf("InstanceName = %s", got)
	}
	if got := CDIName("akri-debug-echo", "8120fe"); got != "akri.sh/akri-debug-echo=8120fe" {
		t.Errorf("CDIName = %s", got)
	}
	if got := EnvSuffix("8120fe"); got != "_8120FE" {
		t.Errorf("EnvSuffix = %s", got)
	}
	if got := InstanceHash("akri-debug-echo", "akri-debug-echo-8120fe"); got != "8120fe" {
		t.Errorf("InstanceHash = %q", got)
	}
	if got := InstanceHash("akri-debug-echo", "akri-debug-echo-zz"); got != "" {
		t.Errorf("InstanceHash of a foreign name = %q", got)
	}
}
