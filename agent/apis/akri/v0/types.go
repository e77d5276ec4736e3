package v0

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Configuration says which discovery handler looks for devices, with which
// details, how many pods may use each device at once, and what to run for
// each device found (a broker Pod or Job, Services).
type Configuration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ConfigurationSpec `json:"spec"`
}

// ConfigurationSpec is akri.sh/v0 Configuration.spec.
type ConfigurationSpec struct {
	// DiscoveryHandler names the handler and what it is asked (immutable).
	DiscoveryHandler DiscoveryHandlerInfo `json:"discoveryHandler"`
	// Capacity is how many pods may use one device at once (default 1).
	Capacity int `json:"capacity,omitempty"`
	// BrokerSpec is what runs for each device: a Pod per node or a Job.
	BrokerSpec *BrokerSpec `json:"brokerSpec,omitempty"`
	// BrokerPodSpecLegacy is the pre-0.8 place of the broker's PodSpec
	// (spec.brokerPodSpec). Accepted and treated as BrokerSpec.BrokerPodSpec;
	// use BrokerPodSpec() rather than reading either field.
	BrokerPodSpecLegacy *corev1.PodSpec `json:"brokerPodSpec,omitempty"`
	// InstanceServiceSpec, when set, gives each Instance with a running
	// broker a Service <instance>-svc.
	InstanceServiceSpec *corev1.ServiceSpec `json:"instanceServiceSpec,omitempty"`
	// ConfigurationServiceSpec, when set, gives the Configuration a Service
	// <configuration>-svc over all its brokers.
	ConfigurationServiceSpec *corev1.ServiceSpec `json:"configurationServiceSpec,omitempty"`
	// BrokerProperties are added to every Instance's properties (and so to
	// the brokers' environment); they win over the device's own.
	BrokerProperties map[string]string `json:"brokerProperties,omitempty"`
}

// DiscoveryHandlerInfo is spec.discoveryHandler.
type DiscoveryHandlerInfo struct {
	// Name of the discovery handler, e.g. debugEcho.
	Name string `json:"name"`
	// DiscoveryDetails is handler-specific, usually YAML.
	DiscoveryDetails string `json:"discoveryDetails,omitempty"`
	// DiscoveryProperties are sent with each Discover request.
	DiscoveryProperties []DiscoveryProperty `json:"discoveryProperties,omitempty"`
}

// DiscoveryProperty is a named value, given inline or read from a Secret or
// ConfigMap key.
type DiscoveryProperty struct {
	Name      string                   `json:"name"`
	Value     *string                  `json:"value,omitempty"`
	ValueFrom *DiscoveryPropertySource `json:"valueFrom,omitempty"`
}

// DiscoveryPropertySource selects a key of a Secret or a ConfigMap (one of
// the two).
type DiscoveryPropertySource struct {
	ConfigMapKeyRef *DiscoveryPropertyKeySelector `json:"configMapKeyRef,omitempty"`
	SecretKeyRef    *DiscoveryPropertyKeySelector `json:"secretKeyRef,omitempty"`
}

// DiscoveryPropertyKeySelector is a key of a named object; Namespace
// defaults to "default" (not the Configuration's namespace), as upstream.
type DiscoveryPropertyKeySelector struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Optional  *bool  `json:"optional,omitempty"`
}

// BrokerSpec holds exactly one of a Pod or a Job template.
type BrokerSpec struct {
	BrokerPodSpec *corev1.PodSpec  `json:"brokerPodSpec,omitempty"`
	BrokerJobSpec *batchv1.JobSpec `json:"brokerJobSpec,omitempty"`
}

// BrokerPodSpec returns the broker PodSpec from spec.brokerSpec.brokerPodSpec
// or, for pre-0.8 Configurations, spec.brokerPodSpec; nil when there is none.
func (s *ConfigurationSpec) BrokerPodSpec() *corev1.PodSpec {
	if s.BrokerSpec != nil && s.BrokerSpec.BrokerPodSpec != nil {
		return s.BrokerSpec.BrokerPodSpec
	}
	if s.BrokerSpec == nil || s.BrokerSpec.BrokerJobSpec == nil {
		return s.BrokerPodSpecLegacy
	}
	return nil
}

// BrokerJobSpec returns spec.brokerSpec.brokerJobSpec, or nil.
func (s *ConfigurationSpec) BrokerJobSpec() *batchv1.JobSpec {
	if s.BrokerSpec == nil {
		return nil
	}
	return s.BrokerSpec.BrokerJobSpec
}

// EffectiveCapacity is Capacity, or 1 when unset (the CRD's default).
func (s *ConfigurationSpec) EffectiveCapacity() int {
	if s.Capacity <= 0 {
		return 1
	}
	return s.Capacity
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ConfigurationList is a list of Configurations.
type ConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Configuration `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Instance is one discovered device: which nodes see it and which of its
// capacity slots are in use.
type Instance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec InstanceSpec `json:"spec"`
}

// InstanceSpec is akri.sh/v0 Instance.spec.
type InstanceSpec struct {
	// ConfigurationName is the Configuration that found the device.
	ConfigurationName string `json:"configurationName"`
	// CDIName is akri.sh/<configuration>=<hash>.
	CDIName string `json:"cdiName"`
	// Capacity is the Configuration's capacity when the Instance was written.
	Capacity int `json:"capacity"`
	// BrokerProperties are the device's properties overlaid by the
	// Configuration's brokerProperties.
	BrokerProperties map[string]string `json:"brokerProperties,omitempty"`
	// Shared devices are seen by several nodes (one Instance for all).
	Shared bool `json:"shared"`
	// Nodes that currently see the device (a set, merged by server-side
	// apply: each node owns its own entry).
	Nodes []string `json:"nodes,omitempty"`
	// DeviceUsage maps slot <instance>-<n> to "" (free), <node>
	// (instance-level claim) or C:<configuration>-<m>:<node>
	// (configuration-level claim).
	DeviceUsage map[string]string `json:"deviceUsage,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// InstanceList is a list of Instances.
type InstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Instance `json:"items"`
}
