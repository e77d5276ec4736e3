package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// nodeReconciler removes nodes that went away from the Instances (request:
// the Node). A node has gone when it is deleted, when it turns NotReady
// after this process saw it Ready (upstream's NodeWatcher rule, which spares
// nodes that are still registering), or when the node lifecycle controller
// marks it Unknown because it stopped reporting. Upstream keeps the "seen
// Ready" memory only, so after a controller restart it never cleans up a
// node that died meanwhile; the Unknown rule closes that gap for nodes whose
// Node object is still there. Instances naming nodes that have no Node
// object at all are left alone: an agent may write its node into an
// Instance before the node has registered, and tests run brokers for nodes
// that never exist.
//
// Cleaning up after node N, for every Instance that mentions N:
//   - N leaves spec.nodes, so that N's broker Pod goes (brokerReconciler);
//   - deviceUsage slots held by N ("N" or "C:<vdev>:N") become free ("");
//   - the finalizer N that N's agent put on the Instance goes, as the agent
//     would have removed it (upstream leaves it, so such an Instance can
//     never finish deleting);
//   - an Instance left with no node is deleted (upstream keeps it).
//
// The agents write Instances with server-side apply (field manager N for the
// Instance, dp-N for its slots), so the controller must neither clobber their
// concurrent writes nor keep ownership of what it frees. It writes JSON
// patches whose test operations pin exactly the values it changes (retrying
// on a mismatch), and then drops its own ownership of the freed slots from
// managedFields: an owner of "" would make every later slot claim (an apply
// without force) conflict. Upstream merge-patches the whole spec, which
// both races with the agents and leaves its manager owning every slot it
// freed.
type nodeReconciler struct {
	client   client.Client // cached reads, writes
	live     client.Reader // uncached reads: patches need fresh values and managedFields
	recorder events.EventRecorder

	mu    sync.Mutex
	state map[string]nodeState
}

type nodeState int

const (
	nodeUnseen  nodeState = iota
	nodeReady             // seen Ready
	nodeCleaned           // cleaned up after, not Ready since
)

var _ reconcile.Reconciler = (*nodeReconciler)(nil)

func (r *nodeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	name := req.Name
	var node corev1.Node
	getErr := r.client.Get(ctx, types.NamespacedName{Name: name}, &node)
	if getErr != nil && !apierrors.IsNotFound(getErr) {
		return reconcile.Result{}, getErr
	}
	gone := getErr != nil
	r.mu.Lock()
	if r.state == nil {
		r.state = map[string]nodeState{}
	}
	st := r.state[name]
	r.mu.Unlock()

	var why string
	switch ready := readyCondition(&node); {
	case gone:
		why = "deleted"
	case ready == corev1.ConditionTrue:
		r.setState(name, nodeReady)
		return reconcile.Result{}, nil
	case ready == corev1.ConditionUnknown && st != nodeCleaned:
		why = "not reporting (Ready Unknown)"
	case st == nodeReady:
		why = "NotReady"
	default:
		return reconcile.Result{}, nil // never seen Ready, or already cleaned up after
	}
	logger(ctx).Info("node gone: removing it from Instances", "node", name, "reason", why)
	if err := r.cleanup(ctx, name, why); err != nil {
		return reconcile.Result{}, err
	}
	if gone {
		r.mu.Lock()
		delete(r.state, name)
		r.mu.Unlock()
	} else {
		r.setState(name, nodeCleaned)
	}
	return reconcile.Result{}, nil
}

func (r *nodeReconciler) setState(name string, s nodeState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state[name] = s
}

// readyCondition is the status of node's last Ready condition, "" if none
// (upstream's is_node_ready also takes the last one).
func readyCondition(node *corev1.Node) corev1.ConditionStatus {
	var s corev1.ConditionStatus
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			s = c.Status
		}
	}
	return s
}

// cleanup removes node from every Instance and deletes its broker Pods.
func (r *nodeReconciler) cleanup(ctx context.Context, node, why string) error {
	var list akriv0.InstanceList
	if err := r.client.List(ctx, &list); err != nil {
		return err
	}
	var errs []error
	for i := range list.Items {
		inst := &list.Items[i]
		if !mentions(inst, node) {
			continue
		}
		if err := r.cleanInstance(ctx, client.ObjectKeyFromObject(inst), node, why); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: %w", client.ObjectKeyFromObject(inst), err))
		}
	}
	// brokerReconciler deletes them too once it sees the Instances without
	// the node; doing it here also covers brokers of Instances that no
	// longer list the node.
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.MatchingLabels{LabelTargetNode: node}); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if ref := controllerRef(p); ref == nil || ref.Kind != "Instance" || p.DeletionTimestamp != nil {
			continue
		}
		if err := deletePod(ctx, r.client, p, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func mentions(inst *akriv0.Instance, node string) bool {
	if slices.Contains(inst.Spec.Nodes, node) || slices.Contains(inst.Finalizers, node) {
		return true
	}
	for _, v := range inst.Spec.DeviceUsage {
		if usedBy(v) == node {
			return true
		}
	}
	return false
}

// usedBy is the node holding a deviceUsage slot: "" (free), "<node>"
// (instance-level claim) or "C:<vdev>:<node>" (configuration-level claim),
// parsed as upstream's NodeUsage. Malformed values belong to no node.
func usedBy(v string) string {
	if rest, ok := strings.CutPrefix(v, "C:"); ok {
		_, node, ok := strings.Cut(rest, ":")
		if !ok {
			return ""
		}
		return node
	}
	return v
}

// maxAttempts bounds the optimistic retries of one Instance update before
// the request goes back to the queue (with backoff).
const maxAttempts = 5

// cleanInstance removes node from the Instance key: see nodeReconciler.
func (r *nodeReconciler) cleanInstance(ctx context.Context, key types.NamespacedName, node, why string) error {
	removed := false // node left spec.nodes in an earlier attempt
	disown := false  // slots were freed and may still be owned by us
	for attempt := 1; ; attempt++ {
		var inst akriv0.Instance
		if err := r.live.Get(ctx, key, &inst); err != nil {
			return client.IgnoreNotFound(err)
		}
		ops, slots := nodeCleanupPatch(&inst, node)
		if len(ops) > 0 {
			data, err := json.Marshal(ops)
			if err != nil {
				return err
			}
			err = r.client.Patch(ctx, &inst, client.RawPatch(types.JSONPatchType, data), client.FieldOwner(FieldManager))
			if err != nil {
				if retryable(err) && attempt < maxAttempts {
					continue
				}
				return client.IgnoreNotFound(err)
			}
			removed = removed || hasNodeRemoval(ops)
			disown = disown || len(slots) > 0
			r.recorder.Eventf(&inst, nil, normal, reasonNodeGone, actionUpdate,
				"node %s %s: removed it from the Instance and freed %d slot(s)", node, why, len(slots))
		}
		if disown {
			if err := r.disownSlots(ctx, &inst); err != nil {
				if retryable(err) && attempt < maxAttempts {
					continue
				}
				return err
			}
			disown = false
		}
		if !removed || len(inst.Spec.Nodes) > 0 || inst.DeletionTimestamp != nil {
			return nil
		}
		// The resourceVersion precondition keeps an agent that just
		// (re)joined the Instance from losing it.
		err := r.client.Delete(ctx, &inst, client.Preconditions{UID: ptr.To(inst.UID), ResourceVersion: ptr.To(inst.ResourceVersion)})
		switch {
		case err == nil:
			logger(ctx).Info("deleted Instance left with no node", "instance", key, "node", node)
			r.recorder.Eventf(&inst, nil, normal, reasonNodeGone, actionDelete, "deleted the Instance: no node is left after node %s %s", node, why)
			return nil
		case retryable(err) && attempt < maxAttempts:
			continue
		default:
			return client.IgnoreNotFound(err)
		}
	}
}

// retryable errors mean the object changed under us: read it again.
func retryable(err error) bool {
	// A failed JSON-patch test is 422 Invalid; a stale resourceVersion is
	// 409 Conflict.
	return apierrors.IsConflict(err) || apierrors.IsInvalid(err)
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

func jsonValue(v any) json.RawMessage {
	b, _ := json.Marshal(v) // strings and managedFields entries: cannot fail
	return b
}

// nodeCleanupPatch is the JSON patch that removes node from inst as of the
// values read (each change is preceded by a test of the value it replaces),
// and the deviceUsage keys it frees. After the patch, inst is as the server
// will have it.
func nodeCleanupPatch(inst *akriv0.Instance, node string) (ops []patchOp, freed []string) {
	// Back to front, so that earlier indices stay valid.
	for i := len(inst.Spec.Nodes) - 1; i >= 0; i-- {
		if inst.Spec.Nodes[i] == node {
			p := "/spec/nodes/" + strconv.Itoa(i)
			ops = append(ops, patchOp{Op: "test", Path: p, Value: jsonValue(node)}, patchOp{Op: "remove", Path: p})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(inst.Spec.DeviceUsage)) {
		v := inst.Spec.DeviceUsage[k]
		if v == "" || usedBy(v) != node {
			continue
		}
		p := "/spec/deviceUsage/" + escapePointer(k)
		ops = append(ops, patchOp{Op: "test", Path: p, Value: jsonValue(v)}, patchOp{Op: "replace", Path: p, Value: jsonValue("")})
		freed = append(freed, k)
	}
	for i := len(inst.Finalizers) - 1; i >= 0; i-- {
		if inst.Finalizers[i] == node {
			p := "/metadata/finalizers/" + strconv.Itoa(i)
			ops = append(ops, patchOp{Op: "test", Path: p, Value: jsonValue(node)}, patchOp{Op: "remove", Path: p})
		}
	}
	return ops, freed
}

func hasNodeRemoval(ops []patchOp) bool {
	for _, op := range ops {
		if op.Op == "remove" && strings.HasPrefix(op.Path, "/spec/nodes/") {
			return true
		}
	}
	return false
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// disownSlots removes the controller's ownership of free deviceUsage slots
// (those it freed, and any an earlier, interrupted cleanup left) from the
// Instance's managedFields. The API server lets a client rewrite
// managedFields; a write that changes nothing else assigns no new ownership.
//
// inst is read again and left as the server has it afterwards.
func (r *nodeReconciler) disownSlots(ctx context.Context, inst *akriv0.Instance) error {
	if err := r.live.Get(ctx, client.ObjectKeyFromObject(inst), inst); err != nil {
		return client.IgnoreNotFound(err)
	}
	var free []string
	for k, v := range inst.Spec.DeviceUsage {
		if v == "" {
			free = append(free, k)
		}
	}
	mf, changed := disown(inst.ManagedFields, FieldManager, free, inst.Spec.DeviceUsage)
	if !changed {
		return nil
	}
	if len(mf) == 0 {
		// An empty list would mean "keep what is there"; nobody else owns
		// anything, so nobody can conflict.
		return nil
	}
	ops := []patchOp{
		{Op: "test", Path: "/metadata/resourceVersion", Value: jsonValue(inst.ResourceVersion)},
		{Op: "replace", Path: "/metadata/managedFields", Value: jsonValue(mf)},
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	return client.IgnoreNotFound(r.client.Patch(ctx, inst, client.RawPatch(types.JSONPatchType, data), client.FieldOwner(FieldManager)))
}

// disown returns managedFields without manager's (Update) ownership of the
// deviceUsage keys in freed whose value in usage is still "". Entries left
// owning nothing are dropped.
func disown(mf []metav1.ManagedFieldsEntry, manager string, freed []string, usage map[string]string) ([]metav1.ManagedFieldsEntry, bool) {
	out := make([]metav1.ManagedFieldsEntry, 0, len(mf))
	changed := false
	for _, e := range mf {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationUpdate || e.Subresource != "" || e.FieldsV1 == nil {
			out = append(out, e)
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(e.FieldsV1.Raw, &fields); err != nil {
			out = append(out, e)
			continue
		}
		spec, _ := fields["f:spec"].(map[string]any)
		du, _ := spec["f:deviceUsage"].(map[string]any)
		touched := false
		for _, k := range freed {
			if v, ok := usage[k]; ok && v == "" {
				if _, owned := du["f:"+k]; owned {
					delete(du, "f:"+k)
					touched = true
				}
			}
		}
		if !touched {
			out = append(out, e)
			continue
		}
		changed = true
		if len(du) == 0 {
			delete(spec, "f:deviceUsage")
		}
		if len(spec) == 0 {
			delete(fields, "f:spec")
		}
		if len(fields) == 0 {
			continue // owns nothing any more
		}
		e.FieldsV1 = &metav1.FieldsV1{Raw: jsonValue(fields)}
		out = append(out, e)
	}
	return out, changed
}
