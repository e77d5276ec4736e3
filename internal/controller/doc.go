// Package controller is wasilet's Akri controller (`wasilet controller`): it
// turns Akri Instances into running brokers and keeps the cluster tidy when
// nodes go away. It is wire- and API-compatible with project-akri/akri 0.13's
// controller (same object names, labels, selectors and owner references), so
// either can take over from the other.
//
// It owns, through one controller-runtime controller per concern:
//
//   - broker Pods and Jobs: for an Instance whose Configuration has a broker
//     PodSpec, one Pod per node in Instance.spec.nodes ([BrokerPodName]); with
//     a broker JobSpec, one Job per Instance and Configuration generation
//     ([BrokerJobName]). Brokers are owned by their Instance.
//   - broker Pod health: a broker Pod that ended, or stayed Pending longer
//     than [Options.PendingTimeout], is deleted, and the first concern
//     creates it again (a deleted broker comes back too, with a new uid).
//   - Services: <instance>-svc from the Configuration's instanceServiceSpec
//     (owned by the Instance) and <configuration>-svc from its
//     configurationServiceSpec (owned by the Configuration), present exactly
//     while at least one of their brokers is Running.
//   - node departure: a node that is deleted or goes NotReady leaves every
//     Instance's nodes, deviceUsage and finalizers; an Instance left with no
//     node is deleted, and the node's broker Pods with it.
//
// It does not own Instances themselves (the agents on the nodes create and
// update them with server-side apply), Configurations (users do), device
// slots (the agents' device plugins claim them), or the CRDs (package deploy).
//
// Usage:
//
//	c, err := controller.New(restConfig, controller.DefaultOptions())
//	if err != nil { … }
//	go func() { errc <- c.Run(ctx) }() // blocks until ctx is done
//	<-c.Ready()                         // caches synced, acting
package controller
