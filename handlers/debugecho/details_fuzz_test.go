package debugecho

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseDetails: ParseDetails never panics; an error wraps
// ErrInvalidDetails and says more than the class; an accepted list is never
// nil and survives a trip through YAML and through JSON (what the proxy
// hands a Wasm handler).
func FuzzParseDetails(f *testing.F) {
	for _, s := range []string{
		"descriptions: [foo0, foo1]",
		"descriptions:\n- bar0\n- bar1\n\n",
		`{"descriptions":["foo0"]}`,
		"descriptions: [1, true, 1.50, ~x]",
		"descriptions: []\n---\ndescriptions: [a]",
		"descriptions: ~",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, details string) {
		d, err := ParseDetails(details)
		if err != nil {
			if !errors.Is(err, ErrInvalidDetails) {
				t.Fatalf("ParseDetails(%q): error %v does not wrap ErrInvalidDetails", details, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, ErrInvalidDetails.Error()+": ") || len(msg) == len(ErrInvalidDetails.Error())+2 {
				t.Fatalf("ParseDetails(%q): error %q does not say what is wrong", details, msg)
			}
			return
		}
		if d.Descriptions == nil {
			t.Fatalf("ParseDetails(%q) accepted a nil descriptions list", details)
		}
		y, err := yaml.Marshal(map[string][]string{"descriptions": d.Descriptions})
		if err != nil {
			t.Fatalf("yaml.Marshal(%q): %v", d.Descriptions, err)
		}
		// The YAML emitter writes some strings (a leading line break: "\n0")
		// as block scalars its own parser refuses or reads differently; the
		// round trip only holds for text the YAML library reads back as the
		// same list.
		readsBack := func(text []byte) bool {
			var back map[string][]string
			return yaml.Unmarshal(text, &back) == nil && reflect.DeepEqual(back["descriptions"], d.Descriptions)
		}
		if readsBack(y) {
			if again, err := ParseDetails(string(y)); err != nil || !reflect.DeepEqual(again, d) {
				t.Fatalf("ParseDetails(%q) = %q; as YAML %q it parses to %q, %v", details, d.Descriptions, y, again.Descriptions, err)
			}
		}
		j, err := json.Marshal(map[string][]string{"descriptions": d.Descriptions})
		if err != nil {
			t.Fatalf("json.Marshal(%q): %v", d.Descriptions, err)
		}
		// encoding/json writes C1 controls (U+0080–U+009F) unescaped, which
		// YAML does not allow in a document: same rule as above.
		if readsBack(j) {
			if again, err := ParseDetails(string(j)); err != nil || !reflect.DeepEqual(again, d) {
				t.Fatalf("ParseDetails(%q) = %q; as JSON %s it parses to %q, %v", details, d.Descriptions, j, again.Descriptions, err)
			}
		}
	})
}
