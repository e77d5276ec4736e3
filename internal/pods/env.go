package pods

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
)

// objectGetter fetches the ConfigMaps and Secrets a pod refers to.
type objectGetter interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// configError is a problem with a container's configuration that the user
// must fix (a missing ConfigMap key and the like); the kubelet reports it as
// Waiting reason CreateContainerConfigError and keeps retrying.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// envVarName is what the kubelet accepts from envFrom (C identifiers and the
// relaxed form allowed since 1.34: any printable ASCII but '=').
var envVarName = regexp.MustCompile(`^[ -<>-~]+$`)

// envContext holds what fieldRef and resourceFieldRef read besides the pod.
type envContext struct {
	hostIP      string
	podIP       string
	allocatable corev1.ResourceList
}

// resolveEnv computes a container's environment like the kubelet: envFrom in
// order (with prefixes), then env in order with $(VAR) expansion against what
// is defined so far. It returns KEY=VALUE pairs in definition order; a later
// definition of a key replaces the earlier one in place. invalid lists
// envFrom keys that were skipped.
func resolveEnv(ctx context.Context, get objectGetter, pod *corev1.Pod, c *corev1.Container, ec envContext) (env []string, invalid []string, err error) {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	// setKey sets env to key of a ConfigMap or Secret (a ConfigMapKeyRef
	// or SecretKeyRef); a missing optional object or key sets nothing.
	setKey := func(env, kind, name, key string, opt *bool) error {
		optional := opt != nil && *opt
		data, extra, err := envSource(ctx, get, pod.Namespace, kind, name, optional)
		if err != nil {
			return err
		}
		v, ok := data[key]
		if !ok {
			v, ok = extra[key]
		}
		switch {
		case ok:
			set(env, v)
		case !optional:
			return configErrorf("couldn't find key %s in %s %s/%s", key, kindTitle[kind], pod.Namespace, name)
		}
		return nil
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		var err error
		switch {
		case from.ConfigMapRef != nil:
			ref := from.ConfigMapRef
			data, _, err = envSource(ctx, get, pod.Namespace, "configmap", ref.Name, ref.Optional != nil && *ref.Optional)
		case from.SecretRef != nil:
			ref := from.SecretRef
			data, _, err = envSource(ctx, get, pod.Namespace, "secret", ref.Name, ref.Optional != nil && *ref.Optional)
		}
		if err != nil {
			return nil, nil, err
		}
		for _, k := range sortedKeys(data) {
			name := from.Prefix + k
			if !envVarName.MatchString(name) {
				invalid = append(invalid, name)
				continue
			}
			set(name, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vals))
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := fieldValue(pod, vf.FieldRef.FieldPath, ec)
			if err != nil {
				return nil, nil, configErrorf("env %s: %v", e.Name, err)
			}
			set(e.Name, v)
		case vf.ResourceFieldRef != nil:
			v, err := resourceValue(pod, c, vf.ResourceFieldRef, ec)
			if err != nil {
				return nil, nil, configErrorf("env %s: %v", e.Name, err)
			}
			set(e.Name, v)
		case vf.ConfigMapKeyRef != nil:
			ref := vf.ConfigMapKeyRef
			if err := setKey(e.Name, "configmap", ref.Name, ref.Key, ref.Optional); err != nil {
				return nil, nil, err
			}
		case vf.SecretKeyRef != nil:
			ref := vf.SecretKeyRef
			if err := setKey(e.Name, "secret", ref.Name, ref.Key, ref.Optional); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, configErrorf("env %s: valueFrom names no source", e.Name)
		}
	}
	env = make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, invalid, nil
}

// kindTitle names an envSource kind in messages about its keys.
var kindTitle = map[string]string{"configmap": "ConfigMap", "secret": "Secret"}

// envSource fetches the ConfigMap or Secret (kind "configmap" or "secret")
// that an env var or envFrom names. data is what envFrom reads (a
// ConfigMap's data, a Secret's data); extra is where a key reference looks
// when data lacks the key (a ConfigMap's binaryData, a Secret's
// stringData). A missing optional object gives no data and no error.
func envSource(ctx context.Context, get objectGetter, namespace, kind, name string, optional bool) (data, extra map[string]string, err error) {
	if kind == "configmap" {
		var cm *corev1.ConfigMap
		if cm, err = get.ConfigMap(ctx, namespace, name); err == nil {
			return cm.Data, stringMap(cm.BinaryData), nil
		}
	} else {
		var s *corev1.Secret
		if s, err = get.Secret(ctx, namespace, name); err == nil {
			return stringMap(s.Data), s.StringData, nil
		}
	}
	if apierrors.IsNotFound(err) && optional {
		return nil, nil, nil
	}
	return nil, nil, lookupError(kind, name, err)
}

func stringMap(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, b := range m {
		out[k] = string(b)
	}
	return out
}

func lookupError(kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return configErrorf("%s %q not found", kind, name)
	}
	return fmt.Errorf("get %s %q: %w", kind, name, err)
}

// expand replaces $(VAR) with the value of VAR when it is defined, keeps
// unknown references as they are, and turns $$ into $, like the kubelet.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// fieldValue reads a downward-API field path of pod.
func fieldValue(pod *corev1.Pod, path string, ec envContext) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return ec.hostIP, nil
	case "status.podIP", "status.podIPs":
		return ec.podIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// subscript parses `prefix['key']`.
func subscript(path, prefix string) (string, bool) {
	if !strings.HasPrefix(path, prefix+"[") || !strings.HasSuffix(path, "]") {
		return "", false
	}
	inner := path[len(prefix)+1 : len(path)-1]
	if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
		inner = inner[1 : len(inner)-1]
	}
	return inner, true
}

// formatMap renders labels/annotations as the downward API does: key="value"
// lines sorted by key.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceValue reads a resourceFieldRef for container c (or the container it
// names). An unset limit falls back to the node's allocatable, like the kubelet.
func resourceValue(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector, ec envContext) (string, error) {
	target := c
	if ref.ContainerName != "" && ref.ContainerName != c.Name {
		target = nil
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == ref.ContainerName {
				target = &pod.Spec.Containers[i]
			}
		}
		for i := range pod.Spec.InitContainers {
			if pod.Spec.InitContainers[i].Name == ref.ContainerName {
				target = &pod.Spec.InitContainers[i]
			}
		}
		if target == nil {
			return "", fmt.Errorf("resourceFieldRef names unknown container %q", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	rn := corev1.ResourceName(name)
	var q resource.Quantity
	var found bool
	switch kind {
	case "limits":
		q, found = target.Resources.Limits[rn]
		if !found {
			q, found = ec.allocatable[rn]
		}
	case "requests":
		q, found = target.Resources.Requests[rn]
		if !found && rn == corev1.ResourceCPU {
			// The kubelet reports an unset cpu request as 0 (rounded up to 1 with divisor 1).
			q, found = resource.MustParse("0"), true
		}
		if !found {
			q, found = target.Resources.Limits[rn]
		}
	default:
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	if !found {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if rn == corev1.ResourceCPU {
		v := math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
		if v < 1 && kind == "requests" {
			v = 1
		}
		return strconv.FormatInt(int64(v), 10), nil
	}
	v := math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	return strconv.FormatInt(int64(v), 10), nil
}
