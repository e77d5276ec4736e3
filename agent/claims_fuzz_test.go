package agent

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

// FuzzClaimNode: for any deviceUsage value, claimNode is the value itself
// (an instance-level claim) or, for a Configuration-level claim "C:…", the
// part after its last colon; and for any Configuration, slot and node name
// the claims this agent writes name that node, and the Configuration slot
// id it strips back out is the one it wrote.
func FuzzClaimNode(f *testing.F) {
	f.Add("node-a", "akri-debug-echo", uint8(0), "node-a")
	f.Add("C:akri-debug-echo-1:node-b", "my.cfg", uint8(12), "node.b.c")
	f.Add("C:", "cfg", uint8(0), "n")
	f.Add("C:x", "a:b", uint8(3), "n")
	f.Add("", "", uint8(0), "")
	f.Fuzz(func(t *testing.T, v, cfg string, slot uint8, node string) {
		got := claimNode(v)
		if rest, ok := strings.CutPrefix(v, "C:"); ok {
			if got != "" && !strings.HasSuffix(rest, ":"+got) || strings.Contains(got, ":") {
				t.Fatalf("claimNode(%q) = %q, not what follows the last colon", v, got)
			}
		} else if got != v {
			t.Fatalf("claimNode(%q) = %q, want the value itself", v, got)
		}

		if len(validation.IsDNS1123Subdomain(node)) != 0 {
			return // not a node name
		}
		if claimNode(node) != node {
			t.Fatalf("claimNode(%q) = %q for an instance-level claim", node, claimNode(node))
		}
		id := cfg + "-" + strconv.Itoa(int(slot))
		claim := "C:" + id + ":" + node
		if claimNode(claim) != node {
			t.Fatalf("claimNode(%q) = %q, want %q", claim, claimNode(claim), node)
		}
		// As plugins.go reads a Configuration-level claim back.
		if back := strings.TrimSuffix(strings.TrimPrefix(claim, "C:"), ":"+node); back != id {
			t.Fatalf("claim %q of node %q reads back as slot %q, want %q", claim, node, back, id)
		}
	})
}

// FuzzRequestHash: requestHash is 64 hex digits, and two requests (details
// and at most one discovery property, valueless or with a value) get the
// same hash exactly when they are the same request.
func FuzzRequestHash(f *testing.F) {
	f.Add("descriptions: [foo0]", "", []byte(nil), uint8(0), "descriptions: [foo1]", "", []byte(nil), uint8(0))
	f.Add("descriptions: [foo0]", "k", []byte(nil), uint8(1), "descriptions: [foo0]", "k", []byte(nil), uint8(2))
	f.Add("d", "k", []byte("v"), uint8(2), "d", "k", []byte("v"), uint8(2))
	f.Add("1:a", "", []byte(nil), uint8(0), "1", "", []byte(nil), uint8(0))
	f.Add("d", "k=1:x", []byte(nil), uint8(1), "d", "k", []byte("1:x"), uint8(2))
	f.Fuzz(func(t *testing.T, d1, k1 string, v1 []byte, p1 uint8, d2, k2 string, v2 []byte, p2 uint8) {
		r1, r2 := fuzzRequest(d1, k1, v1, p1), fuzzRequest(d2, k2, v2, p2)
		h1, h2 := requestHash(r1), requestHash(r2)
		if _, err := hex.DecodeString(h1); len(h1) != 64 || err != nil {
			t.Fatalf("requestHash(%v) = %q", r1, h1)
		}
		p1, p2 = p1%3, p2%3
		same := d1 == d2 && p1 == p2 && (p1 == 0 || k1 == k2 && (p1 == 1 || bytes.Equal(v1, v2)))
		if (h1 == h2) != same {
			t.Fatalf("requests %v and %v (same: %v) have hashes %s and %s", r1, r2, same, h1, h2)
		}
	})
}

// fuzzRequest is a request with details and, by p%3, no property, a
// property without value, or one with value v.
func fuzzRequest(details, k string, v []byte, p uint8) *v0.DiscoverRequest {
	req := &v0.DiscoverRequest{DiscoveryDetails: details}
	switch p % 3 {
	case 1:
		req.DiscoveryProperties = map[string]*v0.ByteData{k: {}}
	case 2:
		if v == nil {
			v = []byte{}
		}
		req.DiscoveryProperties = map[string]*v0.ByteData{k: {Vec: v}}
	}
	return req
}
