package controller

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// Reasons of the Events the controller records. Warnings say what needs a
// human; Normal events say what the controller did.
const (
	reasonBrokerCreated         = "BrokerCreated"         // Instance: a broker Pod or Job was created
	reasonBrokerDeleted         = "BrokerDeleted"         // Instance: a broker Pod was deleted (node left, stale, Instance going)
	reasonBrokerEnded           = "BrokerEnded"           // Instance: a broker Pod ended and is replaced
	reasonBrokerPendingTimeout  = "BrokerPendingTimeout"  // Instance: a broker Pod stayed Pending too long and is replaced
	reasonBrokerFailed          = "BrokerFailed"          // Instance: creating or deleting a broker failed (retried)
	reasonBrokerNameTaken       = "BrokerNameTaken"       // Instance: an object that is not a broker has the broker's name
	reasonInvalidBrokerSpec     = "InvalidBrokerSpec"     // Configuration: the API server refused its broker (not retried)
	reasonConfigurationNotFound = "ConfigurationNotFound" // Instance: its Configuration does not exist
	reasonServiceCreated        = "ServiceCreated"        // Instance or Configuration
	reasonServiceDeleted        = "ServiceDeleted"        // Instance or Configuration
	reasonServiceFailed         = "ServiceFailed"         // Instance or Configuration: a Service write failed (retried)
	reasonServiceNameTaken      = "ServiceNameTaken"      // Instance or Configuration: a foreign Service has the name
	reasonInvalidServiceSpec    = "InvalidServiceSpec"    // Configuration: the API server refused a Service (not retried)
	reasonNodeGone              = "NodeGone"              // Instance: a deleted or NotReady node was removed from it
)

// Actions of those Events (events.k8s.io/v1 requires one).
const (
	actionCreate  = "Create"
	actionDelete  = "Delete"
	actionUpdate  = "Update"
	actionObserve = "Observe"
)

const (
	warning = corev1.EventTypeWarning
	normal  = corev1.EventTypeNormal
)

// logger is the reconcile's logger (controller-runtime puts one carrying the
// controller, object and reconcile id in ctx) as a *slog.Logger.
func logger(ctx context.Context) *slog.Logger {
	return slog.New(logr.ToSlogHandler(ctrllog.FromContext(ctx)))
}

// controllerRef is obj's controlling owner reference, or nil.
func controllerRef(obj metav1.Object) *metav1.OwnerReference {
	return metav1.GetControllerOfNoCopy(obj)
}

// controlledByInstance tells whether obj is controlled by an Instance named
// name (of any uid).
func controlledByInstance(obj metav1.Object, name string) bool {
	ref := controllerRef(obj)
	return ref != nil && ref.Kind == "Instance" && isAkriGroup(ref.APIVersion) && ref.Name == name
}

func isAkriGroup(apiVersion string) bool {
	gv, err := schema.ParseGroupVersion(apiVersion)
	return err == nil && gv.Group == akriv0.GroupName
}
