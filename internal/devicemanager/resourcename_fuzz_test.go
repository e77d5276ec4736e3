package devicemanager

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzValidateResourceName: a refused name gets a reason that quotes it and
// says what is wrong; an accepted one is what the kubelet calls an extended
// resource (domain-prefixed, outside kubernetes.io, not requests.*, a
// qualified name with and without the quota prefix).
func FuzzValidateResourceName(f *testing.F) {
	for _, s := range []string{"example.com/dev", "akri.sh/akri-debug-echo-8120fe", "dev", "kubernetes.io/x", "requests.example.com/x", "example.com/", "a/b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := validateResourceName(name)
		if IsExtendedResourceName(name) != (err == nil) {
			t.Fatalf("IsExtendedResourceName(%q) disagrees with validateResourceName: %v", name, err)
		}
		if err != nil {
			msg := err.Error()
			if name != "" && !strings.HasPrefix(msg, "the ResourceName "+strconv.Quote(name)+" is invalid: ") || name == "" && msg != "the ResourceName is empty" {
				t.Fatalf("validateResourceName(%q): error %q does not quote the name and say why", name, msg)
			}
			if strings.HasSuffix(msg, ": ") {
				t.Fatalf("validateResourceName(%q): error %q has no reason", name, msg)
			}
			return
		}
		domain, _, ok := strings.Cut(name, "/")
		if !ok || domain == "" || strings.Contains(name, corev1.ResourceDefaultNamespacePrefix) || strings.HasPrefix(name, corev1.DefaultResourceRequestsPrefix) {
			t.Fatalf("validateResourceName(%q) accepted a native, unprefixed or quota name", name)
		}
		if errs := validation.IsQualifiedName(name); len(errs) != 0 {
			t.Fatalf("validateResourceName(%q) accepted a name that is not a qualified name: %v", name, errs)
		}
	})
}
