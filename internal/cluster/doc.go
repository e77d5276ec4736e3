// Package cluster runs the local Kubernetes control plane that the demo, the
// end-to-end tests and the benchmarks share: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and an OCI registry (distribution
// v3), all real upstream binaries (built by hack/tools.sh) listening on
// 127.0.0.1.
//
// It owns the cluster's PKI (cluster CA, serving and client certificates,
// front-proxy CA, service-account keys), the kubeconfigs it writes (admin, and
// a bootstrap-token kubeconfig with which a node joins through TLS
// bootstrapping exactly as on a kubeadm cluster, together with the RBAC
// bindings that make that work), and the lifecycle of the component
// processes: Up starts them, or reuses the ones already running from the same
// state directory, Down stops them, Status reports on them.
//
// Everything a cluster owns lives in its state directory:
//
//	state.json                 ports, tools directory, bootstrap token id
//	pki/                       certificates and keys (PEM)
//	admin.kubeconfig           cluster-admin (system:masters) client certificate
//	bootstrap.kubeconfig       bootstrap token for kubelet TLS bootstrap
//	controller-manager.kubeconfig, scheduler.kubeconfig
//	etcd/                      etcd data
//	registry/                  registry storage and config
//	logs/<component>.log       each component's output
//	run/<component>.pid        "pid start-time" of each running component
//
// StartRegistry starts a standalone registry (optionally with htpasswd basic
// auth) for tests that need one of their own.
//
// This package never imports the wasm runtime or the node: it only runs
// upstream binaries and talks to them over loopback.
package cluster
