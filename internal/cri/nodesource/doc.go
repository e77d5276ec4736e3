// Package nodesource adapts wasilet's pod lifecycle (internal/pods) and
// OCI store (oci) to the data interfaces of the CRI endpoint
// (internal/cri.PodSource and ImageSource).
package nodesource
