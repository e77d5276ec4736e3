// Package deploy holds Kubernetes manifests (as files beside this one) for the
// reference scenario and for running wasilet's components in a cluster. It has
// no Go code of its own beyond this description.
package deploy
