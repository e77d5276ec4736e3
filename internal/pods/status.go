package pods

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func mtime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}

func termState(t *termination) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:    t.ExitCode,
		Reason:      t.Reason,
		Message:     t.Message,
		StartedAt:   mtime(t.StartedAt),
		FinishedAt:  mtime(t.FinishedAt),
		ContainerID: t.ContainerID,
	}
}

func containerStatus(c *containerRecord) corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		ImageID:      c.ImageID,
		ContainerID:  c.ContainerID,
		RestartCount: c.RestartCount,
	}
	switch c.Phase {
	case phaseRunning:
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(c.StartedAt)}
		s.Ready = !c.Init || c.Sidecar
	case phaseTerminated:
		if c.Term != nil {
			s.State.Terminated = termState(c.Term)
		} else {
			s.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Unknown"}
		}
	default:
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.Reason, Message: c.Message}
	}
	if c.Last != nil {
		s.LastTerminationState.Terminated = termState(c.Last)
	}
	started := c.Phase == phaseRunning
	s.Started = &started
	return s
}

// podPhase computes the phase the way the kubelet's getPhase does. Like the
// kubelet since 1.27, a terminal phase is reported only once no container
// is running any more, sidecars (restartable init containers) included: a
// pod past its deadline, or whose regular containers have all ended, is
// Running while its other guests are being stopped.
func podPhase(pod *corev1.Pod, r *podRecord) corev1.PodPhase {
	phase := regularPhase(pod, r)
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		for _, c := range r.Containers {
			if c.Phase == phaseRunning {
				return corev1.PodRunning
			}
		}
	}
	return phase
}

// regularPhase is getPhase's answer from the pod's record (its failure,
// its init containers, its regular containers), before podPhase holds a
// terminal phase back for containers still running.
func regularPhase(pod *corev1.Pod, r *podRecord) corev1.PodPhase {
	if r.Failed {
		return corev1.PodFailed
	}
	if !r.Initialized {
		for _, c := range r.Containers {
			if c.Init && c.Done && c.Term != nil && c.Term.ExitCode != 0 {
				return corev1.PodFailed
			}
		}
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, c := range r.Containers {
		if c.Init {
			continue
		}
		switch c.Phase {
		case phaseRunning:
			running++
		case phaseTerminated:
			stopped++
			if c.Term != nil && c.Term.ExitCode == 0 {
				succeeded++
			}
		default:
			if c.Last != nil {
				running++ // restarting
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		if r.Deleted {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// buildStatus renders the record as the pod status the kubelet would report.
func buildStatus(pod *corev1.Pod, r *podRecord, hostIP string, now time.Time) corev1.PodStatus {
	st := corev1.PodStatus{
		// The kubelet reports the spec generation its status reflects.
		ObservedGeneration: pod.Generation,
		Phase:              podPhase(pod, r),
		HostIP:             hostIP,
		PodIP:              hostIP,
		QOSClass:           pod.Status.QOSClass,
		StartTime:          &metav1.Time{},
	}
	*st.StartTime = mtime(r.StartTime)
	if hostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: hostIP}}
		st.PodIPs = []corev1.PodIP{{IP: hostIP}}
	}
	if r.Failed {
		st.Reason = r.Reason
		st.Message = r.Message
	}
	for _, c := range r.Containers {
		cs := containerStatus(c)
		if c.Init {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		} else {
			st.ContainerStatuses = append(st.ContainerStatuses, cs)
		}
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed

	allReady := true
	nRegular := 0
	var notReady []string
	for _, cs := range st.ContainerStatuses {
		nRegular++
		if !cs.Ready {
			allReady = false
			notReady = append(notReady, cs.Name)
		}
	}
	var initNotDone []string
	for _, c := range r.Containers {
		if c.Init && !(c.Done && c.Term != nil && c.Term.ExitCode == 0) && !(c.Started && isRestartableInit(pod, c)) {
			initNotDone = append(initNotDone, c.Name)
		}
	}

	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		status := corev1.ConditionFalse
		if ok {
			status = corev1.ConditionTrue
		}
		key := string(t) + "=" + string(status)
		if r.Transitions == nil {
			r.Transitions = map[string]time.Time{}
		}
		ts, seen := r.Transitions[key]
		if !seen {
			ts = now
			r.Transitions[key] = ts
			delete(r.Transitions, string(t)+"="+string(flip(status)))
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{
			Type: t, Status: status, Reason: reason, Message: msg,
			LastTransitionTime: mtime(ts), ObservedGeneration: pod.Generation,
		})
	}
	cond(corev1.PodReadyToStartContainers, r.SandboxUp && !terminal, "", "")
	if r.Initialized {
		cond(corev1.PodInitialized, true, "", "")
	} else {
		cond(corev1.PodInitialized, false, "ContainersNotInitialized", "containers with incomplete status: "+list(initNotDone))
	}
	switch {
	case terminal:
		cond(corev1.ContainersReady, false, "PodCompleted", "")
		cond(corev1.PodReady, false, "PodCompleted", "")
	case allReady && nRegular > 0:
		cond(corev1.ContainersReady, true, "", "")
		cond(corev1.PodReady, true, "", "")
	default:
		msg := "containers with unready status: " + list(notReady)
		cond(corev1.ContainersReady, false, "ContainersNotReady", msg)
		cond(corev1.PodReady, false, "ContainersNotReady", msg)
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
		LastTransitionTime: scheduledTime(pod, r),
	})
	return st
}

func scheduledTime(pod *corev1.Pod, r *podRecord) metav1.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.LastTransitionTime
		}
	}
	return mtime(r.StartTime)
}

func flip(s corev1.ConditionStatus) corev1.ConditionStatus {
	if s == corev1.ConditionTrue {
		return corev1.ConditionFalse
	}
	return corev1.ConditionTrue
}

func list(names []string) string {
	s := "["
	for i, n := range names {
		if i > 0 {
			s += " "
		}
		s += n
	}
	return s + "]"
}
