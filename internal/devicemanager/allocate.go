package devicemanager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// ReasonUnexpectedAdmissionError is the kubelet's pod failure reason when
// device allocation fails.
const ReasonUnexpectedAdmissionError = "UnexpectedAdmissionError"

// containerRequest is one container's extended-resource requests.
type containerRequest struct {
	name string
	// init is true for an init container that is not restartable: its
	// devices may be reused by later containers of the pod.
	init     bool
	requests map[string]int
}

// podRequests lists the containers of pod that request extended resources,
// init containers first (in order), then app containers. Limits are
// authoritative (extended resources cannot be overcommitted); a request
// without a limit counts too.
func podRequests(pod *corev1.Pod) []containerRequest {
	var out []containerRequest
	add := func(c *corev1.Container, init bool) {
		req := map[string]int{}
		for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			for name, q := range rl {
				if !IsExtendedResourceName(string(name)) {
					continue
				}
				req[string(name)] = int(q.Value())
			}
		}
		for name, n := range req {
			if n <= 0 {
				delete(req, name)
			}
		}
		out = append(out, containerRequest{name: c.Name, init: init, requests: req})
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		restartable := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		add(c, !restartable)
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], false)
	}
	return out
}

func admissionError(err error) *AdmissionError {
	return &AdmissionError{
		Reason:  ReasonUnexpectedAdmissionError,
		Message: fmt.Sprintf("Allocate failed due to %v, which is unexpected", err),
	}
}

// Admit chooses and allocates devices for every container of pod that
// requests extended resources, as the kubelet does at admission: for each
// container (init containers first) and resource, devices are taken first
// from those held by the pod's finished init containers, then from the
// healthy unallocated devices of the resource — in the order the plugin's
// GetPreferredAllocation suggests when it offers it — and Allocate is
// called. A pod that already holds its devices (admitted before, or
// restored from the checkpoint) keeps them. Any failure leaves the pod
// without devices and returns an *AdmissionError (UnexpectedAdmissionError).
func (m *Manager) Admit(ctx context.Context, pod *corev1.Pod) error {
	reqs := podRequests(pod)
	wants := false
	for _, c := range reqs {
		if len(c.requests) > 0 {
			wants = true
		}
	}
	if !wants {
		return nil
	}
	m.admitMu.Lock()
	defer m.admitMu.Unlock()

	m.mu.Lock()
	var held *podAllocation
	if pa := m.pods[pod.UID]; pa != nil {
		held = clonePodAllocation(pa)
	}
	m.mu.Unlock()

	pa := held
	if pa == nil {
		pa = &podAllocation{containers: map[string]map[string]*allocEntry{}}
	}
	pa.namespace, pa.name = pod.Namespace, pod.Name
	changed := false
	reuse := map[string]map[string]bool{} // resource → devices of finished init containers
	for _, c := range reqs {
		for _, res := range slices.Sorted(maps.Keys(c.requests)) {
			n := c.requests[res]
			if e := pa.containers[c.name][res]; e != nil {
				if len(e.ids) != n {
					return admissionError(fmt.Errorf("pod %s container %q changed its request for %s from %d to %d", pod.UID, c.name, res, len(e.ids), n))
				}
				continue
			}
			ids, resp, err := m.allocate(ctx, pod, c.name, res, n, reuse[res], pa)
			if err != nil {
				return admissionError(err)
			}
			if pa.containers[c.name] == nil {
				pa.containers[c.name] = map[string]*allocEntry{}
			}
			pa.containers[c.name][res] = &allocEntry{ids: ids, resp: resp}
			changed = true
		}
		// The kubelet's reuse rule: devices of a (non-restartable) init
		// container can be handed to the containers that run after it;
		// devices of any other container are no longer reusable.
		for res, e := range pa.containers[c.name] {
			if reuse[res] == nil {
				reuse[res] = map[string]bool{}
			}
			for _, id := range e.ids {
				if c.init {
					reuse[res][id] = true
				} else {
					delete(reuse[res], id)
				}
			}
		}
	}
	if !changed {
		return nil
	}
	m.mu.Lock()
	m.pods[pod.UID] = pa
	m.checkpointLocked()
	m.mu.Unlock()
	m.log.Info("devices allocated", "pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID)
	return nil
}

// allocate picks n devices of res for one container and calls Allocate.
func (m *Manager) allocate(ctx context.Context, pod *corev1.Pod, container, res string, n int, reusable map[string]bool, pending *podAllocation) ([]string, *pluginapi.ContainerAllocateResponse, error) {
	m.mu.Lock()
	rs := m.resources[res]
	if rs == nil {
		m.mu.Unlock()
		return nil, nil, fmt.Errorf("cannot allocate unregistered device %s", res)
	}
	if !rs.live() {
		m.mu.Unlock()
		return nil, nil, fmt.Errorf("no healthy devices present; cannot allocate unhealthy devices %s (its device plugin is not connected)", res)
	}
	healthy := rs.healthy()
	if len(healthy) == 0 {
		m.mu.Unlock()
		return nil, nil, fmt.Errorf("no healthy devices present; cannot allocate unhealthy devices %s", res)
	}
	inUse := m.allocatedLocked()[res]
	// Devices already chosen for other containers of this pod in this
	// admission are in use too.
	for _, rr := range pending.containers {
		if e := rr[res]; e != nil {
			if inUse == nil {
				inUse = map[string]bool{}
			}
			for _, id := range e.ids {
				inUse[id] = true
			}
		}
	}
	ep := rs.ep
	opts := rs.opts
	m.mu.Unlock()

	chosen := map[string]bool{}
	// 1. devices of the pod's finished init containers.
	for _, id := range slices.Sorted(maps.Keys(reusable)) {
		if len(chosen) == n {
			break
		}
		if healthy[id] {
			chosen[id] = true
		}
	}
	var available []string
	for id := range healthy {
		if !inUse[id] && !chosen[id] {
			available = append(available, id)
		}
	}
	slices.Sort(available)
	if need := n - len(chosen); need > len(available) {
		return nil, nil, fmt.Errorf("requested number of devices unavailable for %s. Requested: %d, Available: %d", res, need, len(available))
	}
	// 2. the plugin's preference.
	if len(chosen) < n && opts.GetGetPreferredAllocationAvailable() {
		mustInclude := slices.Sorted(maps.Keys(chosen))
		pctx, cancel := context.WithTimeout(ctx, m.opts.RPCTimeout)
		resp, err := ep.client.GetPreferredAllocation(pctx, &pluginapi.PreferredAllocationRequest{
			ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{
				AvailableDeviceIDs:   append(slices.Clone(available), mustInclude...),
				MustIncludeDeviceIDs: mustInclude,
				AllocationSize:       int32(n),
			}},
		})
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("device plugin GetPreferredAllocation rpc failed with err: %w", err)
		}
		if rr := resp.GetContainerResponses(); len(rr) > 0 {
			avail := map[string]bool{}
			for _, id := range available {
				avail[id] = true
			}
			for _, id := range rr[0].GetDeviceIDs() {
				if len(chosen) == n {
					break
				}
				if avail[id] {
					chosen[id] = true
				}
			}
		}
	}
	// 3. whatever is left, in id order.
	for _, id := range available {
		if len(chosen) == n {
			break
		}
		chosen[id] = true
	}
	ids := slices.Sorted(maps.Keys(chosen))

	// The devices must still be free and healthy: a plugin may have
	// re-registered or changed its list during the RPC.
	m.mu.Lock()
	if cur := m.resources[res]; cur == nil || cur.ep != ep || !cur.live() {
		m.mu.Unlock()
		return nil, nil, fmt.Errorf("device plugin for %s went away during allocation", res)
	}
	m.mu.Unlock()

	m.log.Debug("allocating devices", "pod", pod.Namespace+"/"+pod.Name, "container", container, "resource", res, "devices", ids)
	actx, cancel := context.WithTimeout(ctx, m.opts.RPCTimeout)
	defer cancel()
	resp, err := ep.client.Allocate(actx, &pluginapi.AllocateRequest{
		ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("device plugin Allocate rpc for %s failed with err: %w", res, err)
	}
	if len(resp.GetContainerResponses()) == 0 || resp.ContainerResponses[0] == nil {
		return nil, nil, fmt.Errorf("no containers return in allocation response from %s", res)
	}
	return ids, resp.ContainerResponses[0], nil
}

func clonePodAllocation(pa *podAllocation) *podAllocation {
	out := &podAllocation{namespace: pa.namespace, name: pa.name, containers: map[string]map[string]*allocEntry{}}
	for c, rr := range pa.containers {
		out.containers[c] = maps.Clone(rr)
	}
	return out
}

// PrepareContainer returns what the container's devices need (envs,
// mounts, device nodes, annotations, device ids), calling PreStartContainer
// first on plugins that asked for it. It returns nil when the container has
// no devices. A pod that requests devices but was not admitted (a race at
// restart) is admitted here, as the kubelet re-allocates.
func (m *Manager) PrepareContainer(ctx context.Context, pod *corev1.Pod, container string) (*ContainerAllocation, error) {
	needs := false
	for _, c := range podRequests(pod) {
		if c.name == container && len(c.requests) > 0 {
			needs = true
		}
	}
	m.mu.Lock()
	pa := m.pods[pod.UID]
	m.mu.Unlock()
	if pa == nil && needs {
		if err := m.Admit(ctx, pod); err != nil {
			return nil, err
		}
	}

	m.mu.Lock()
	pa = m.pods[pod.UID]
	var entries map[string]*allocEntry
	if pa != nil {
		entries = maps.Clone(pa.containers[container])
	}
	type prestart struct {
		res string
		ep  *endpoint
		ids []string
	}
	var calls []prestart
	for _, res := range slices.Sorted(maps.Keys(entries)) {
		rs := m.resources[res]
		if rs == nil || !rs.opts.GetPreStartRequired() {
			continue
		}
		if !rs.live() {
			// Restored allocation, plugin not back yet: like the kubelet
			// with a restored endpoint, there is nobody to call.
			m.log.Warn("PreStartContainer skipped: device plugin not connected", "pod", pod.Namespace+"/"+pod.Name, "container", container, "resource", res)
			continue
		}
		calls = append(calls, prestart{res: res, ep: rs.ep, ids: entries[res].ids})
	}
	m.mu.Unlock()
	if len(entries) == 0 {
		return nil, nil
	}

	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, pluginapi.KubeletPreStartContainerRPCTimeoutInSecs*time.Second)
		_, err := c.ep.client.PreStartContainer(cctx, &pluginapi.PreStartContainerRequest{DevicesIds: c.ids})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("device plugin PreStartContainer rpc for %s failed with err: %w", c.res, err)
		}
	}
	return mergeAllocation(entries), nil
}

// mergeAllocation merges the Allocate responses of one container, resource
// by resource in name order; on a conflict the first setting wins (the
// kubelet keeps the first and logs the conflict).
func mergeAllocation(entries map[string]*allocEntry) *ContainerAllocation {
	out := &ContainerAllocation{
		Envs:        map[string]string{},
		Annotations: map[string]string{},
		DeviceIDs:   map[string][]string{},
	}
	mounts, devs := map[string]bool{}, map[string]bool{}
	for _, res := range slices.Sorted(maps.Keys(entries)) {
		e := entries[res]
		out.DeviceIDs[res] = slices.Clone(e.ids)
		r := e.resp
		for _, k := range slices.Sorted(maps.Keys(r.GetEnvs())) {
			if _, ok := out.Envs[k]; !ok {
				out.Envs[k] = r.Envs[k]
			}
		}
		for _, mt := range r.GetMounts() {
			if mt == nil || mounts[mt.ContainerPath] {
				continue
			}
			mounts[mt.ContainerPath] = true
			out.Mounts = append(out.Mounts, Mount{ContainerPath: mt.ContainerPath, HostPath: mt.HostPath, ReadOnly: mt.ReadOnly})
		}
		for _, d := range r.GetDevices() {
			if d == nil || devs[d.ContainerPath] {
				continue
			}
			devs[d.ContainerPath] = true
			out.Devices = append(out.Devices, DeviceSpec{ContainerPath: d.ContainerPath, HostPath: d.HostPath, Permissions: d.Permissions})
		}
		for _, k := range slices.Sorted(maps.Keys(r.GetAnnotations())) {
			if _, ok := out.Annotations[k]; !ok {
				out.Annotations[k] = r.Annotations[k]
			}
		}
	}
	return out
}

// Release frees every device held by the pod.
func (m *Manager) Release(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pa := m.pods[podUID]
	if pa == nil {
		return
	}
	delete(m.pods, podUID)
	m.checkpointLocked()
	m.log.Info("devices released", "pod", pa.namespace+"/"+pa.name, "uid", podUID)
}

// ReleaseInactive frees the devices of every pod not in active (the
// kubelet's UpdateAllocatedDevices: pods deleted while the node was down)
// and returns the UIDs it freed.
func (m *Manager) ReleaseInactive(active []types.UID) []types.UID {
	keep := map[types.UID]bool{}
	for _, u := range active {
		keep[u] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var freed []types.UID
	for uid := range m.pods {
		if !keep[uid] {
			delete(m.pods, uid)
			freed = append(freed, uid)
		}
	}
	if len(freed) > 0 {
		m.checkpointLocked()
		slices.Sort(freed)
		m.log.Info("devices of inactive pods released", "pods", len(freed))
	}
	return freed
}

// IsAdmissionError reports whether err is an *AdmissionError.
func IsAdmissionError(err error) bool {
	var ae *AdmissionError
	return errors.As(err, &ae)
}
