package controller

import (
	"strconv"
	"strings"
)

// Labels and values the controller puts on what it creates, as upstream Akri
// does (shared/src/k8s/pod.rs). Selectors and the other components rely on
// them, so they are part of the wire contract.
const (
	// LabelApp carries the name of the broker Pod, Job or Service itself.
	LabelApp = "app"
	// LabelController marks objects made by an Akri controller; its value is
	// always [ControllerValue].
	LabelController = "controller"
	// ControllerValue is the value of [LabelController].
	ControllerValue = "akri.sh"
	// LabelConfiguration names the Configuration a broker or Service serves.
	LabelConfiguration = "akri.sh/configuration"
	// LabelInstance names the Instance a broker or Service serves.
	LabelInstance = "akri.sh/instance"
	// LabelTargetNode names the node a broker Pod is for.
	LabelTargetNode = "akri.sh/target-node"
)

// Placeholder is the resource name that broker specs use in
// resources.limits and resources.requests where the Instance's own resource,
// akri.sh/<instance>, goes. The quantity given with it is kept.
const Placeholder = "{{PLACEHOLDER}}"

// FieldManager is the field manager of the controller's writes to objects
// that others also write (Instances).
const FieldManager = "akri-controller"

// BrokerPodName is the name of the broker Pod of instance on node. An
// Instance's name already says which node an unshared device is on, so only
// shared Instances put the node in front. Dots in the Instance name become
// dashes; the node name is kept as it is (upstream's create_broker_app_name).
func BrokerPodName(instance, node string, shared bool) string {
	name := normalize(instance) + "-pod"
	if shared {
		name = node + "-" + name
	}
	return name
}

// BrokerJobName is the name of the broker Job of instance for generation of
// its Configuration, so that a changed Configuration gets a new Job.
func BrokerJobName(instance string, generation int64) string {
	return normalize(instance) + "-" + strconv.FormatInt(generation, 10) + "-job"
}

// InstanceServiceName is the name of the Service of one Instance's brokers.
func InstanceServiceName(instance string) string { return normalize(instance) + "-svc" }

// ConfigurationServiceName is the name of the Service of all the brokers of a
// Configuration.
//
// Upstream keeps dots in the Configuration name here, which no Service name
// may contain, so such a Configuration never gets its Service there; the
// dashes only change names upstream cannot create.
func ConfigurationServiceName(configuration string) string {
	return normalize(configuration) + "-svc"
}

func normalize(name string) string { return strings.ReplaceAll(name, ".", "-") }
