// Package cri serves a read-only CRI v1 endpoint (k8s.io/cri-api
// runtime/v1 RuntimeService and ImageService on one unix socket) that
// presents wasilet's Wasm pods as pod sandboxes and containers, so crictl
// (pods, ps, inspect, inspectp, logs, stats, images, imagefsinfo, version,
// info) works on a wasilet node. Every call that would create, change or
// remove something answers codes.Unimplemented and points to the Kubernetes
// API: pods are managed by the node's pod lifecycle, not through CRI.
//
// Data comes from the pod lifecycle through PodSource (a snapshot of pods
// and container attempts) and from the image store through ImageSource.
package cri
