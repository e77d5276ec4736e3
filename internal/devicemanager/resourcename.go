package devicemanager

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// IsExtendedResourceName reports whether name can be advertised by a device
// plugin: a domain-prefixed name (domain/name) outside the kubernetes.io
// namespace that is still a valid qualified name once given the quota prefix
// "requests." — the rule the kubelet applies to registrations and to pod
// requests.
func IsExtendedResourceName(name string) bool {
	return validateResourceName(name) == nil
}

// validateResourceName explains why name is not an extended resource name.
func validateResourceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the ResourceName is empty")
	case !strings.Contains(name, "/"):
		return fmt.Errorf("the ResourceName %q is invalid: it needs a domain prefix (domain/name, like example.com/device)", name)
	case strings.Contains(name, corev1.ResourceDefaultNamespacePrefix):
		return fmt.Errorf("the ResourceName %q is invalid: the %s namespace is reserved for native resources", name, corev1.ResourceDefaultNamespacePrefix)
	case strings.HasPrefix(name, corev1.DefaultResourceRequestsPrefix):
		return fmt.Errorf("the ResourceName %q is invalid: the %q prefix is reserved for quota", name, corev1.DefaultResourceRequestsPrefix)
	}
	if errs := validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix + name); len(errs) != 0 {
		return fmt.Errorf("the ResourceName %q is invalid: %s", name, strings.Join(errs, "; "))
	}
	return nil
}
