package pods

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/wasilet/wasilet/runtime"
)

// Runtime loads Wasm programs: core modules and components alike (the pod
// code never branches on the kind). runtime.Engine satisfies it through
// EngineRuntime.
type Runtime interface {
	Load(ctx context.Context, wasm []byte, digest string) (Program, error)
}

// Program is a loaded Wasm program; Run runs it once (see runtime.Program).
type Program interface {
	Run(ctx context.Context, spec runtime.Spec) (runtime.Result, error)
}

// EngineRuntime adapts a *runtime.Engine to Runtime.
type EngineRuntime struct{ Engine *runtime.Engine }

// Load implements Runtime.
func (e EngineRuntime) Load(ctx context.Context, wasm []byte, digest string) (Program, error) {
	p, err := e.Engine.Load(ctx, wasm, digest)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Image is a Wasm artifact ready to load.
type Image struct {
	// Wasm is the module or component binary; or nil, and Read returns it
	// when the program is not loaded yet (so a cached image is not read for
	// every container start).
	Wasm []byte
	Read func() ([]byte, error)
	// Digest is the content digest of Wasm ("sha256:..."), passed to
	// Runtime.Load as the compiled-cache key; the provider keeps one loaded
	// Program per digest.
	Digest string
	// ID is what the pod status reports as imageID, e.g.
	// "registry/repo@sha256:<manifest digest>".
	ID string
}

// ImageService finds and pulls Wasm images. The pod lifecycle applies
// imagePullPolicy on top of it: Resolve looks only at what the node already
// has, Pull goes to the registry.
type ImageService interface {
	// Resolve returns the image if it is present on the node.
	Resolve(ctx context.Context, ref string) (*Image, error)
	// Pull fetches ref with the pod's image pull secrets
	// (kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg).
	Pull(ctx context.Context, ref string, secrets []corev1.Secret) (*Image, error)
}

// defaultPullPolicy is what the API server would have defaulted: Always for
// :latest or untagged references, IfNotPresent otherwise.
func defaultPullPolicy(ref string) corev1.PullPolicy {
	if i := strings.Index(ref, "@"); i >= 0 {
		return corev1.PullIfNotPresent
	}
	last := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		last = ref[i+1:]
	}
	i := strings.LastIndex(last, ":")
	if i < 0 || last[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// clientGetter reads ConfigMaps and Secrets through listers when given and
// the API otherwise (a node's credentials may get, but not list, them).
type clientGetter struct {
	client     kubernetes.Interface
	configMaps corev1listers.ConfigMapLister
	secrets    corev1listers.SecretLister
}

func (g clientGetter) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if g.configMaps != nil {
		if cm, err := g.configMaps.ConfigMaps(ns).Get(name); err == nil {
			return cm, nil
		}
	}
	if g.client == nil {
		return nil, errors.New("no Kubernetes client")
	}
	return g.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (g clientGetter) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	if g.secrets != nil {
		if s, err := g.secrets.Secrets(ns).Get(name); err == nil {
			return s, nil
		}
	}
	if g.client == nil {
		return nil, errors.New("no Kubernetes client")
	}
	return g.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// load returns the program of img, loading it once per digest.
func (p *Provider) load(ctx context.Context, img *Image) (Program, error) {
	if img.Digest != "" {
		p.progMu.Lock()
		prog, ok := p.programs[img.Digest]
		p.progMu.Unlock()
		if ok {
			return prog, nil
		}
	}
	wasm := img.Wasm
	if wasm == nil {
		if img.Read == nil {
			return nil, errors.New("image has no Wasm content")
		}
		var err error
		if wasm, err = img.Read(); err != nil {
			return nil, err
		}
	}
	prog, err := p.cfg.Runtime.Load(ctx, wasm, img.Digest)
	if err != nil {
		return nil, err
	}
	if img.Digest != "" {
		p.progMu.Lock()
		p.programs[img.Digest] = prog
		p.progMu.Unlock()
	}
	return prog, nil
}
