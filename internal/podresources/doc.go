// Package podresources serves the kubelet's PodResources v1 API
// (k8s.io/kubelet/pkg/apis/podresources/v1) on
// <data-dir>/pod-resources/kubelet.sock: List and Get report, for each pod
// on the node, the device ids its containers were given by device plugins;
// GetAllocatableResources reports every healthy device. Pods come from the
// node's pod lifecycle and devices from internal/devicemanager, through the
// small interfaces declared here.
package podresources
