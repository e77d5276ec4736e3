package v0

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of Akri's API.
const (
	GroupName = "akri.sh"
	Version   = "v0"
)

// SchemeGroupVersion is akri.sh/v0.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Resources of the API, for dynamic clients and RBAC.
var (
	ConfigurationsResource = SchemeGroupVersion.WithResource("configurations")
	InstancesResource      = SchemeGroupVersion.WithResource("instances")
)

var (
	// SchemeBuilder registers the types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds Configuration and Instance (and their lists).
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&Configuration{}, &ConfigurationList{},
		&Instance{}, &InstanceList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
