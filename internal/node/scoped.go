package node

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// nodeScopedClient is the client handed to virtual-kubelet. Its node package
// starts cluster-wide informers on config maps and secrets (for its own
// downward-API resolution), but a node identity may only read the config
// maps and secrets of the pods bound to it (the Node authorizer), like the
// kubelet, which fetches them one by one. Granting nodes every secret of the
// cluster to satisfy those informers would be a security regression, so
// their List and Watch see an empty, quiet source instead of being refused
// (and retried, and logged) forever. Everything else passes through. The
// provider fetches the objects it needs with its own client (GET is allowed
// for referenced objects), and wasilet sets SkipDownwardAPIResolution
// accordingly.
type nodeScopedClient struct{ kubernetes.Interface }

func (c nodeScopedClient) CoreV1() corev1client.CoreV1Interface {
	return scopedCoreV1{c.Interface.CoreV1()}
}

type scopedCoreV1 struct{ corev1client.CoreV1Interface }

func (c scopedCoreV1) Secrets(ns string) corev1client.SecretInterface {
	return emptySecrets{c.CoreV1Interface.Secrets(ns)}
}

func (c scopedCoreV1) ConfigMaps(ns string) corev1client.ConfigMapInterface {
	return emptyConfigMaps{c.CoreV1Interface.ConfigMaps(ns)}
}

type emptySecrets struct{ corev1client.SecretInterface }

func (emptySecrets) List(context.Context, metav1.ListOptions) (*corev1.SecretList, error) {
	return &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
}

func (emptySecrets) Watch(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return quietWatch(o, &corev1.Secret{}), nil
}

type emptyConfigMaps struct {
	corev1client.ConfigMapInterface
}

func (emptyConfigMaps) List(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error) {
	return &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
}

func (emptyConfigMaps) Watch(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return quietWatch(o, &corev1.ConfigMap{}), nil
}

// quietWatch never delivers an object. A streaming list (sendInitialEvents,
// client-go's WatchList) gets the bookmark that ends the (empty) initial
// events, so the informer syncs at once.
func quietWatch(o metav1.ListOptions, obj interface {
	runtime.Object
	SetResourceVersion(string)
	SetAnnotations(map[string]string)
}) watch.Interface {
	w := watch.NewFakeWithChanSize(1, false)
	if o.SendInitialEvents != nil && *o.SendInitialEvents {
		obj.SetResourceVersion("1")
		obj.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
		w.Action(watch.Bookmark, obj)
	}
	return w
}
