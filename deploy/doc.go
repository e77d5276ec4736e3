// Package deploy holds the Kubernetes manifests of wasilet's Akri half and
// installs the cluster-wide ones. The files beside this one are the source;
// the package embeds what programs and tests need:
//
//	crds/configurations.akri.sh.yaml  Configuration CRD (akri.sh/v0, akric)
//	crds/instances.akri.sh.yaml       Instance CRD (akri.sh/v0, akrii)
//	rbac.yaml                         namespace wasilet-system, service accounts,
//	                                  roles and bindings of agent and controller
//	controller.yaml                   Deployment of `wasilet controller`
//	agent.yaml                        DaemonSet of `wasilet agent` (Linux nodes)
//	examples/akri-debug-echo.yaml     the reference scenario's Configuration
//	examples/wasi-debug-echo.yaml     its Wasm discovery-handler pod
//
// The CRDs follow project-akri/akri 0.13's schema field for field, plus the
// pre-0.8 spec.brokerPodSpec, which the agent and the controller read as
// spec.brokerSpec.brokerPodSpec (ConfigurationSpec.BrokerPodSpec in
// agent/apis/akri/v0).
//
// With kubectl, in this order (the namespace is in rbac.yaml):
//
//	kubectl apply -f deploy/crds -f deploy/rbac.yaml -f deploy/controller.yaml -f deploy/agent.yaml
//
// From Go, as the demo and the end-to-end tests do:
//
//	if err := deploy.InstallCRDs(ctx, cfg); err != nil { … } // waits until served
//	if err := deploy.ApplyRBAC(ctx, cfg); err != nil { … }
//	yaml, err := deploy.Example("akri-debug-echo.yaml")
//
// Both install functions use server-side apply with the field manager
// [FieldManager], so they are idempotent and update what an older wasilet
// installed.
package deploy
