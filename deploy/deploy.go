package deploy

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// FieldManager is the server-side apply field manager of [InstallCRDs] and
// [ApplyRBAC].
const FieldManager = "wasilet"

// Namespace is where rbac.yaml, agent.yaml and controller.yaml put the agent
// and the controller.
const Namespace = "wasilet-system"

// Service accounts defined in rbac.yaml (in [Namespace]).
const (
	AgentServiceAccount      = "wasilet-agent"
	ControllerServiceAccount = "wasilet-controller"
)

var (
	//go:embed crds/*.yaml
	crdFiles embed.FS
	//go:embed rbac.yaml
	rbacYAML []byte
	//go:embed examples/*.yaml
	exampleFiles embed.FS
)

var crdResource = apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")

// pollInterval is how often InstallCRDs looks whether the API serves the CRDs.
const pollInterval = 200 * time.Millisecond

// CRDs returns Akri's CustomResourceDefinitions (configurations.akri.sh and
// instances.akri.sh, in that order) as parsed from deploy/crds. Each call
// returns new objects, which the caller may modify. An error means a
// manifest does not parse (a bug of this package).
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	docs, err := crdDocuments()
	if err != nil {
		return nil, err
	}
	crds := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(docs))
	for _, d := range docs {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := decodeStrict(d.json, crd); err != nil {
			return nil, fmt.Errorf("parse %s: %w", d.source, err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// InstallCRDs creates or updates Akri's CRDs (server-side apply as
// [FieldManager], forcing conflicts: the manifests win over earlier edits)
// and waits until they are Established and the API serves their resources,
// so that objects of both kinds can be created as soon as it returns. It
// waits as long as ctx allows; give it a deadline. Calling it again is
// harmless.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	docs, err := crdDocuments()
	if err != nil {
		return err
	}
	cfg = withoutUintWarning(cfg)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	client := dyn.Resource(crdResource)
	var names []string
	for _, d := range docs {
		obj, err := d.object()
		if err != nil {
			return err
		}
		if _, err := client.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply CRD %s: %w", obj.GetName(), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		var crd apiextensionsv1.CustomResourceDefinition
		err := poll(ctx, "CRD "+name+" established", func(ctx context.Context) (string, error) {
			u, err := client.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				return "", fmt.Errorf("read CRD %s: %w", name, err)
			}
			if err != nil {
				return err.Error(), nil
			}
			crd = apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
				return "", fmt.Errorf("read CRD %s: %w", name, err)
			}
			return established(&crd)
		})
		if err != nil {
			return err
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			gv := schema.GroupVersion{Group: crd.Spec.Group, Version: v.Name}.String()
			plural := crd.Spec.Names.Plural
			err := poll(ctx, "API serves "+plural+"."+gv, func(ctx context.Context) (string, error) {
				list, err := dc.ServerResourcesForGroupVersionWithContext(ctx, gv)
				if err != nil {
					return err.Error(), nil
				}
				for _, r := range list.APIResources {
					if r.Name == plural {
						return "", nil
					}
				}
				return "not in discovery yet", nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// withoutUintWarning returns a copy of cfg whose client drops the API
// server's warning about the Instance CRD's `format: uint` (upstream's
// schema has it; the API server does not know the format and ignores it),
// which would otherwise be logged on every install. Other warnings go where
// cfg sends them (logged, when it says nothing).
func withoutUintWarning(cfg *rest.Config) *rest.Config {
	var next rest.WarningHandlerWithContext = rest.WarningLogger{}
	switch {
	case cfg.WarningHandlerWithContext != nil:
		next = cfg.WarningHandlerWithContext
	case cfg.WarningHandler != nil:
		next = warningHandlerFunc(func(_ context.Context, code int, agent, text string) {
			cfg.WarningHandler.HandleWarningHeader(code, agent, text)
		})
	}
	c := rest.CopyConfig(cfg)
	c.WarningHandler = nil
	c.WarningHandlerWithContext = warningHandlerFunc(func(ctx context.Context, code int, agent, text string) {
		if !strings.Contains(text, `unrecognized format "uint"`) {
			next.HandleWarningHeaderWithContext(ctx, code, agent, text)
		}
	})
	return c
}

type warningHandlerFunc func(ctx context.Context, code int, agent, text string)

func (f warningHandlerFunc) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, text string) {
	f(ctx, code, agent, text)
}

// established says what keeps crd from being served ("" when nothing does),
// or returns an error when that will not change by waiting (its names clash
// with another resource's).
func established(crd *apiextensionsv1.CustomResourceDefinition) (string, error) {
	var est, names *apiextensionsv1.CustomResourceDefinitionCondition
	for i := range crd.Status.Conditions {
		switch c := &crd.Status.Conditions[i]; c.Type {
		case apiextensionsv1.Established:
			est = c
		case apiextensionsv1.NamesAccepted:
			names = c
		}
	}
	if names != nil && names.Status == apiextensionsv1.ConditionFalse {
		return "", fmt.Errorf("CRD %s: names not accepted: %s: %w", crd.Name, names.Message, errdefs.ErrFailedPrecondition)
	}
	if est == nil || est.Status != apiextensionsv1.ConditionTrue {
		if est != nil && est.Message != "" {
			return "not established: " + est.Message, nil
		}
		return "not established", nil
	}
	return "", nil
}

// ApplyRBAC creates or updates everything in rbac.yaml — the namespace
// wasilet-system, the agent's and the controller's service accounts, roles
// and bindings, and the binding of the agent's role to group system:nodes —
// by server-side apply as [FieldManager], forcing conflicts. Calling it
// again is harmless.
func ApplyRBAC(ctx context.Context, cfg *rest.Config) error {
	docs, err := splitYAML("rbac.yaml", rbacYAML)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	lists := map[string]*metav1.APIResourceList{}
	for _, d := range docs {
		obj, err := d.object()
		if err != nil {
			return err
		}
		gvk := obj.GroupVersionKind()
		gv := gvk.GroupVersion().String()
		list, ok := lists[gv]
		if !ok {
			if list, err = dc.ServerResourcesForGroupVersionWithContext(ctx, gv); err != nil {
				return fmt.Errorf("discover %s: %w", gv, err)
			}
			lists[gv] = list
		}
		var res *metav1.APIResource
		for i, r := range list.APIResources {
			if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
				res = &list.APIResources[i]
				break
			}
		}
		if res == nil {
			return fmt.Errorf("apply %s %s: the API has no such kind: %w", gvk.Kind, obj.GetName(), errdefs.ErrNotFound)
		}
		all := dyn.Resource(gvk.GroupVersion().WithResource(res.Name))
		var client dynamic.ResourceInterface = all
		if res.Namespaced {
			client = all.Namespace(obj.GetNamespace())
		}
		if _, err := client.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
	return nil
}

// Example returns the manifest deploy/examples/<name> ("akri-debug-echo.yaml";
// the .yaml may be left out). It fails with an errdefs.ErrNotFound error for
// a name that is not there.
func Example(name string) ([]byte, error) {
	if path.Ext(name) == "" {
		name += ".yaml"
	}
	if strings.Contains(name, "/") || !fs.ValidPath(name) {
		return nil, fmt.Errorf("example %q: %w", name, errdefs.ErrNotFound)
	}
	b, err := exampleFiles.ReadFile("examples/" + name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("example %q: %w", name, errdefs.ErrNotFound)
	}
	return b, err
}

// document is one YAML document of a manifest, as JSON.
type document struct {
	source string // file#index, for errors
	json   []byte
}

func (d document) object() (*unstructured.Unstructured, error) {
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(d.json); err != nil {
		return nil, fmt.Errorf("parse %s: %w", d.source, err)
	}
	return obj, nil
}

// crdDocuments are the documents of crds/*.yaml, files in name order.
func crdDocuments() ([]document, error) {
	files, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return nil, err
	}
	var docs []document
	for _, f := range files {
		b, err := crdFiles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ds, err := splitYAML(f, b)
		if err != nil {
			return nil, err
		}
		docs = append(docs, ds...)
	}
	return docs, nil
}

// splitYAML splits a multi-document YAML file, dropping empty documents.
func splitYAML(source string, b []byte) ([]document, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs []document
	for i := 0; ; i++ {
		raw, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", source, err)
		}
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("parse %s#%d: %w", source, i, err)
		}
		if s := string(bytes.TrimSpace(j)); s == "null" || s == "{}" {
			continue
		}
		docs = append(docs, document{source: fmt.Sprintf("%s#%d", source, i), json: j})
	}
}

// decodeStrict decodes JSON into v, refusing fields v does not have.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// poll calls f every pollInterval until it reports nothing left to wait for
// (""), returns an error, or ctx ends.
func poll(ctx context.Context, what string, f func(context.Context) (string, error)) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		waiting, err := f(ctx)
		if err != nil {
			return err
		}
		if waiting == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (%s)", what, ctx.Err(), waiting)
		case <-t.C:
		}
	}
}
