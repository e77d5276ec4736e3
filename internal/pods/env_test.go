package pods

import (
	"context"
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func ptr[T any](v T) *T { return &v }

func testGetter(objs ...any) objectGetter {
	cs := fake.NewClientset()
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			cs.CoreV1().ConfigMaps(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Secret:
			cs.CoreV1().Secrets(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		}
	}
	return clientGetter{client: cs}
}

func TestResolveEnv(t *testing.T) {
	get := testGetter(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"A": "from-cm", "1num": "x", "K": "v"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"PASS": []byte("s3cret")}},
	)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"note": "n"}},
		Spec:       corev1.PodSpec{NodeName: "node1", ServiceAccountName: "sa"},
	}
	c := &corev1.Container{
		Name: "c",
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("1500m")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		},
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}, Prefix: "CM_"},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Optional: ptr(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "hello"},
			{Name: "EXPANDED", Value: "$(PLAIN)-$(CM_A)-$(UNKNOWN)-$$(PLAIN)"},
			{Name: "NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
			{Name: "LABEL", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "ANN", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['note']"}}},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "SA", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
			{Name: "HOSTIP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
			{Name: "PODIP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			{Name: "CPUREQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
			{Name: "CMKEY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "K"}}},
			{Name: "SECKEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "PASS"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "nope", Optional: ptr(true)}}},
			{Name: "PLAIN", Value: "override"},
		},
	}
	env, invalid, err := resolveEnv(context.Background(), get, pod, c, envContext{hostIP: "10.0.0.5", podIP: "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CM_1num=x", "CM_A=from-cm", "CM_K=v",
		"PLAIN=override", "EXPANDED=hello-from-cm-$(UNKNOWN)-$(PLAIN)",
		"NAME=p", "NS=ns", "UID=u1", "LABEL=x", "ANN=n", "NODE=node1", "SA=sa",
		"HOSTIP=10.0.0.5", "PODIP=10.0.0.5", "MEM=64", "CPU=2", "CPUREQ=250",
		"CMKEY=v", "SECKEY=s3cret",
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("env:\n got %q\nwant %q", env, want)
	}
	if len(invalid) != 0 {
		t.Fatalf("invalid: %q", invalid)
	}
}

func TestResolveEnvMissing(t *testing.T) {
	get := testGetter()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	for _, c := range []corev1.Container{
		{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}},
		{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}},
		{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}}},
		{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.bogus"}}}}},
	} {
		_, _, err := resolveEnv(context.Background(), get, pod, &c, envContext{})
		var ce *configError
		if !errors.As(err, &ce) {
			t.Errorf("%+v: got %v, want a configError", c, err)
		}
	}
	// Optional sources are skipped.
	c := corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr(true)}}}}}
	env, _, err := resolveEnv(context.Background(), get, pod, &c, envContext{})
	if err != nil || len(env) != 0 {
		t.Fatalf("optional: env=%q err=%v", env, err)
	}
}

func TestArgv(t *testing.T) {
	env := map[string]string{"WHO": "world"}
	n, a := argv(&corev1.Container{Name: "c", Args: []string{"echo", "hi $(WHO)"}}, env)
	if n != "c" || !reflect.DeepEqual(a, []string{"echo", "hi world"}) {
		t.Fatalf("args only: %q %q", n, a)
	}
	n, a = argv(&corev1.Container{Name: "c", Command: []string{"prog", "x"}, Args: []string{"y"}}, env)
	if n != "prog" || !reflect.DeepEqual(a, []string{"x", "y"}) {
		t.Fatalf("command: %q %q", n, a)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	for ref, want := range map[string]corev1.PullPolicy{
		"127.0.0.1:5000/x":             corev1.PullAlways,
		"127.0.0.1:5000/x:latest":      corev1.PullAlways,
		"127.0.0.1:5000/x:v1":          corev1.PullIfNotPresent,
		"127.0.0.1:5000/x@sha256:abcd": corev1.PullIfNotPresent,
		"localhost/ns/x:1.0":           corev1.PullIfNotPresent,
	} {
		if got := defaultPullPolicy(ref); got != want {
			t.Errorf("%s: %s, want %s", ref, got, want)
		}
	}
}

// TestResolveEnvSources pins what ConfigMaps and Secrets give: envFrom reads
// data only, key references fall back to binaryData / stringData, and a
// missing object or key is reported by kind.
func TestResolveEnvSources(t *testing.T) {
	get := testGetter(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"},
			Data: map[string]string{"D": "cm-data", "SAME": "data-wins"}, BinaryData: map[string][]byte{"B": []byte("cm-bin"), "SAME": []byte("bin")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"},
			Data: map[string][]byte{"D": []byte("sec-data"), "bad=name": []byte("x"), "SAME": []byte("data-wins")}, StringData: map[string]string{"S": "sec-str", "SAME": "str"}},
	)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	cmKey := func(env, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: key}}}
	}
	secKey := func(env, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: key}}}
	}
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}, Prefix: "C_"},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}, Prefix: "S_"},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
		},
		Env: []corev1.EnvVar{cmKey("CB", "B"), cmKey("CSAME", "SAME"), secKey("SS", "S"), secKey("SSAME", "SAME")},
	}
	env, invalid, err := resolveEnv(context.Background(), get, pod, c, envContext{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"C_D=cm-data", "C_SAME=data-wins", "S_D=sec-data", "S_SAME=data-wins",
		"CB=cm-bin", "CSAME=data-wins", "SS=sec-str", "SSAME=data-wins",
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("env:\n got %q\nwant %q", env, want)
	}
	if !reflect.DeepEqual(invalid, []string{"S_bad=name"}) {
		t.Fatalf("invalid: %q", invalid)
	}

	for _, tc := range []struct {
		c    corev1.Container
		want string
	}{
		{corev1.Container{Env: []corev1.EnvVar{cmKey("X", "nope")}}, "couldn't find key nope in ConfigMap ns/cm"},
		{corev1.Container{Env: []corev1.EnvVar{secKey("X", "nope")}}, "couldn't find key nope in Secret ns/sec"},
		{corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}}, `secret "gone" not found`},
		{corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}}}}, `configmap "gone" not found`},
	} {
		_, _, err := resolveEnv(context.Background(), get, pod, &tc.c, envContext{})
		var ce *configError
		if !errors.As(err, &ce) || err.Error() != tc.want {
			t.Errorf("got %v, want configError %q", err, tc.want)
		}
	}
}
