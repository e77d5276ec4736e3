// Package v0 holds the Go types of Akri's custom resources, group akri.sh
// version v0: Configuration (what to discover and which brokers to run) and
// Instance (one discovered device, shared by the nodes that see it). They
// follow project-akri/akri 0.13's schema field for field, plus the pre-0.8
// top-level spec.brokerPodSpec that older Configurations (the akri-on-krustlet
// reference scenario among them) still use; BrokerPodSpec reads either.
//
// The CRD manifests live in deploy/crds; zz_generated.deepcopy.go is written
// by `just generate`.
//
// +k8s:deepcopy-gen=package
// +groupName=akri.sh
package v0
