package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

var apiVersion = akri.SchemeGroupVersion.String()

// errBeingDeleted: the Instance to apply is still being deleted.
var errBeingDeleted = errors.New("instance is being deleted")

// brokerProperties are the device's properties overlaid by the
// Configuration's brokerProperties (the Configuration wins, as upstream).
func brokerProperties(cfg *akri.Configuration, d *device) map[string]string {
	out := make(map[string]string, len(d.dev.GetProperties())+len(cfg.Spec.BrokerProperties))
	maps.Copy(out, d.dev.GetProperties())
	maps.Copy(out, cfg.Spec.BrokerProperties)
	return out
}

// instanceBody is the server-side apply of this node's view of an Instance
// (field manager = node name). nodes lists this node unless leaving.
func instanceBody(cfg *akri.Configuration, d *device, node string, leaving bool) map[string]any {
	nodes := []string{node}
	if leaving {
		nodes = []string{}
	}
	return map[string]any{
		"apiVersion": apiVersion,
		"kind":       "Instance",
		"metadata": map[string]any{
			"name":      d.instance,
			"namespace": cfg.Namespace,
			"ownerReferences": []any{map[string]any{
				"apiVersion": apiVersion,
				"kind":       "Configuration",
				"name":       cfg.Name,
				"uid":        string(cfg.UID),
				"controller": true,
			}},
		},
		"spec": map[string]any{
			"configurationName": cfg.Name,
			"cdiName":           akri.CDIName(cfg.Name, d.hash),
			"capacity":          cfg.Spec.EffectiveCapacity(),
			"brokerProperties":  brokerProperties(cfg, d),
			"shared":            d.shared,
			"nodes":             nodes,
		},
	}
}

// upToDate says whether the cached Instance already holds what this node
// would apply (so that a steady device costs no API call).
func upToDate(in *akri.Instance, cfg *akri.Configuration, d *device, node string) bool {
	if in == nil || in.DeletionTimestamp != nil || !slices.Contains(in.Spec.Nodes, node) {
		return false
	}
	owned := false
	for _, o := range in.OwnerReferences {
		if o.UID == cfg.UID && o.Controller != nil && *o.Controller {
			owned = true
		}
	}
	return owned &&
		in.Spec.ConfigurationName == cfg.Name &&
		in.Spec.CDIName == akri.CDIName(cfg.Name, d.hash) &&
		in.Spec.Capacity == cfg.Spec.EffectiveCapacity() &&
		in.Spec.Shared == d.shared &&
		maps.Equal(in.Spec.BrokerProperties, brokerProperties(cfg, d))
}

// applyInstance makes sure the Instance of d exists with this node in
// spec.nodes and the Configuration's current capacity and properties.
// Forced: when a Configuration's capacity or brokerProperties change, the
// nodes sharing an Instance would otherwise conflict over the old values
// forever (upstream's behaviour); every node applies the same new value.
func (a *Agent) applyInstance(ctx context.Context, cfg *akri.Configuration, d *device) error {
	var cached akri.Instance
	err := a.cache.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: d.instance}, &cached)
	switch {
	case err == nil:
		if upToDate(&cached, cfg, d, a.opts.NodeName) {
			return nil
		}
		if cached.DeletionTimestamp != nil {
			// Being deleted (the device went and came back, or the
			// Configuration was recreated): apply again once it is gone
			// (its deletion wakes the Configuration; see plugins.Reconcile).
			return errBeingDeleted
		}
	case !apierrors.IsNotFound(err):
		return err
	}
	return a.apply(ctx, akri.InstancesResource, cfg.Namespace, d.instance, instanceBody(cfg, d, a.opts.NodeName, false), a.opts.NodeName, true)
}

// leaveInstance takes this node out of an Instance whose device it no
// longer discovers: the Instance is deleted when this node was its only
// one, else this node's entry of spec.nodes is released.
func (a *Agent) leaveInstance(ctx context.Context, cfg *akri.Configuration, in *akri.Instance) error {
	others := slices.DeleteFunc(slices.Clone(in.Spec.Nodes), func(n string) bool { return n == a.opts.NodeName })
	a.log.Info("device no longer discovered: leaving instance", "instance", in.Name, "others", others)
	if len(others) == 0 {
		err := a.dyn.Resource(akri.InstancesResource).Namespace(in.Namespace).Delete(ctx, in.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &in.UID, ResourceVersion: &in.ResourceVersion},
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	hash := akri.InstanceHash(cfg.Name, in.Name)
	d := &device{instance: in.Name, hash: hash, shared: in.Spec.Shared}
	body := instanceBody(cfg, d, a.opts.NodeName, true)
	spec := body["spec"].(map[string]any)
	spec["brokerProperties"] = in.Spec.BrokerProperties
	return a.apply(ctx, akri.InstancesResource, in.Namespace, in.Name, body, a.opts.NodeName, true)
}

// addFinalizer adds this node's finalizer to an object by server-side apply
// with field manager <node>-fin (metadata.finalizers is a set: each node owns
// its own entry).
func (a *Agent) addFinalizer(ctx context.Context, gvr schema.GroupVersionResource, kind, namespace, name string) error {
	meta := map[string]any{"name": name, "namespace": namespace, "finalizers": []string{a.opts.NodeName}}
	body := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	return a.apply(ctx, gvr, namespace, name, body, a.opts.NodeName+"-fin", false)
}

// removeFinalizer releases this node's finalizer with a JSON patch that
// removes exactly its entry: an apply could create an object deleted
// meanwhile (and fail its validation), and must not fail on one that is
// terminating.
func (a *Agent) removeFinalizer(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) error {
	res := a.dyn.Resource(gvr).Namespace(namespace)
	for attempt := 0; attempt < 5; attempt++ {
		obj, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		i := slices.Index(obj.GetFinalizers(), a.opts.NodeName)
		if i < 0 {
			return nil
		}
		path := fmt.Sprintf("/metadata/finalizers/%d", i)
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": path, "value": a.opts.NodeName},
			{"op": "remove", "path": path},
		})
		_, err = res.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: a.opts.NodeName + "-fin"})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsInvalid(err) && !apierrors.IsConflict(err) {
			// (a failed "test" op is Invalid: the list changed; read again)
			return fmt.Errorf("remove finalizer %s from %s %s/%s: %w", a.opts.NodeName, gvr.Resource, namespace, name, err)
		}
	}
	return fmt.Errorf("remove finalizer %s from %s %s/%s: the list kept changing", a.opts.NodeName, gvr.Resource, namespace, name)
}

// apply sends a server-side apply patch.
func (a *Agent) apply(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, body map[string]any, manager string, force bool) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = a.dyn.Resource(gvr).Namespace(namespace).Patch(ctx, name, types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager: manager,
		Force:        ptr.To(force),
	})
	if err != nil {
		return fmt.Errorf("apply %s %s/%s as %s: %w", gvr.Resource, namespace, name, manager, err)
	}
	return nil
}
