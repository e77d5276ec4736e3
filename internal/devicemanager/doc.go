// Package devicemanager owns the node's kubelet-compatible device-plugin
// manager (deviceplugin v1beta1): the registration server, one endpoint per
// plugin with ListAndWatch, node capacity and allocatable per resource,
// admission and allocation of devices to pods (GetPreferredAllocation,
// Allocate, PreStartContainer), and the checkpoint of allocations on disk.
package devicemanager
