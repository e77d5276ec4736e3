package agent

import (
	"context"
	"encoding/json"
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
			// Being deleted (Configuration recreated, or the last node
			// left): apply again once it is gone.
			return fmt.Errorf("instance %s/%s is being deleted; will apply again", cfg.Namespace, d.instance)
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

// applyFinalizer adds (or, with add false, releases) this node's finalizer
// on an object, by server-side apply with field manager <node>-fin:
// metadata.finalizers is a set, so each node owns its own entry.
func (a *Agent) applyFinalizer(ctx context.Context, gvr schema.GroupVersionResource, kind, namespace, name string, add bool) error {
	meta := map[string]any{"name": name, "namespace": namespace}
	if add {
		meta["finalizers"] = []string{a.opts.NodeName}
	}
	body := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	err := a.apply(ctx, gvr, namespace, name, body, a.opts.NodeName+"-fin", false)
	if !add && err != nil && (apierrors.IsNotFound(err) || apierrors.IsInvalid(err)) {
		// Releasing the finalizer of an object that is gone meanwhile: the
		// apply would create it and fail validation. Gone is done.
		if _, gerr := a.dyn.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(gerr) {
			return nil
		}
	}
	return err
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
