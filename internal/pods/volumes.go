package pods

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// volume is a pod volume made ready on the host.
type volume struct {
	// Path is the host path: a directory, or for hostPath a file or socket.
	Path     string
	ReadOnly bool
}

// mountError is a volume that cannot be set up; the pod stays Pending with a
// FailedMount event, like the kubelet's.
type mountError struct {
	Volume string
	Err    error
}

func (e *mountError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *mountError) Unwrap() error { return e.Err }

// tokenFunc issues a service account token for a projected volume.
type tokenFunc func(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, error)

type volumeDeps struct {
	get   objectGetter
	token tokenFunc
	ec    envContext
}

// setupVolumes makes every volume of pod ready under dir
// (<data-dir>/pods/<uid>/volumes). It is idempotent.
func setupVolumes(ctx context.Context, pod *corev1.Pod, dir string, deps volumeDeps) (map[string]volume, error) {
	vols := make(map[string]volume, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		vol, err := setupVolume(ctx, pod, v, filepath.Join(dir, v.Name), deps)
		if err != nil {
			return nil, &mountError{Volume: v.Name, Err: err}
		}
		vols[v.Name] = vol
	}
	return vols, nil
}

func setupVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, dir string, deps volumeDeps) (volume, error) {
	if strings.ContainsAny(v.Name, "/\\") || v.Name == "" || v.Name == "." || v.Name == ".." {
		return volume{}, fmt.Errorf("invalid volume name %q", v.Name)
	}
	src := &v.VolumeSource
	switch {
	case src.HostPath != nil:
		p, err := checkHostPath(src.HostPath)
		return volume{Path: p}, err
	case src.EmptyDir != nil:
		// Medium Memory is also a directory under the data directory (no
		// tmpfs): Wasm guests only reach it through WASI, so the medium is
		// not observable; sizeLimit is not enforced.
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return volume{}, err
		}
		return volume{Path: dir}, nil
	case src.ConfigMap != nil:
		files, err := configMapFiles(ctx, pod, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, deps.get)
		if err != nil {
			return volume{}, err
		}
		return volume{Path: dir, ReadOnly: true}, writeProjection(dir, files, src.ConfigMap.DefaultMode)
	case src.Secret != nil:
		files, err := secretFiles(ctx, pod, src.Secret.SecretName, src.Secret.Items, src.Secret.Optional, deps.get)
		if err != nil {
			return volume{}, err
		}
		return volume{Path: dir, ReadOnly: true}, writeProjection(dir, files, src.Secret.DefaultMode)
	case src.DownwardAPI != nil:
		files, err := downwardFiles(pod, src.DownwardAPI.Items, deps.ec)
		if err != nil {
			return volume{}, err
		}
		return volume{Path: dir, ReadOnly: true}, writeProjection(dir, files, src.DownwardAPI.DefaultMode)
	case src.Projected != nil:
		var all []projFile
		for _, s := range src.Projected.Sources {
			var files []projFile
			var err error
			switch {
			case s.ConfigMap != nil:
				files, err = configMapFiles(ctx, pod, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, deps.get)
			case s.Secret != nil:
				files, err = secretFiles(ctx, pod, s.Secret.Name, s.Secret.Items, s.Secret.Optional, deps.get)
			case s.DownwardAPI != nil:
				files, err = downwardFiles(pod, s.DownwardAPI.Items, deps.ec)
			case s.ServiceAccountToken != nil:
				t := s.ServiceAccountToken
				if deps.token == nil {
					err = fmt.Errorf("service account tokens are not available on this node")
					break
				}
				exp := int64(3600)
				if t.ExpirationSeconds != nil {
					exp = *t.ExpirationSeconds
				}
				var tok string
				tok, err = deps.token(ctx, pod, t.Audience, exp)
				files = []projFile{{path: t.Path, data: []byte(tok), mode: 0o600}}
			case s.ClusterTrustBundle != nil || s.PodCertificate != nil:
				err = fmt.Errorf("projected source type is not supported on wasm32-wasi nodes")
			}
			if err != nil {
				return volume{}, err
			}
			all = append(all, files...)
		}
		return volume{Path: dir, ReadOnly: true}, writeProjection(dir, all, src.Projected.DefaultMode)
	}
	return volume{}, fmt.Errorf("volume type is not supported on wasm32-wasi nodes (supported: hostPath, emptyDir, configMap, secret, downwardAPI, projected)")
}

// checkHostPath applies the hostPath type checks of the kubelet.
func checkHostPath(hp *corev1.HostPathVolumeSource) (string, error) {
	p := filepath.Clean(hp.Path)
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("hostPath %q is not absolute", hp.Path)
	}
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	fi, err := os.Stat(p)
	exists := err == nil
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("hostPath %s: %w", p, err)
	}
	fail := func(what string) (string, error) {
		return "", fmt.Errorf("hostPath type check failed: %s is not a %s", p, what)
	}
	switch typ {
	case corev1.HostPathUnset:
		if !exists {
			// The kubelet mounts whatever is there; a Wasm preopen needs a
			// directory, so an absent unset-type path is created as one.
			if err := os.MkdirAll(p, 0o755); err != nil {
				return "", fmt.Errorf("hostPath %s: %w", p, err)
			}
		}
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return "", fmt.Errorf("hostPath type check failed: create directory %s: %w", p, err)
			}
		} else if !fi.IsDir() {
			return fail("directory")
		}
	case corev1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return fail("directory")
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			if _, err := os.Stat(filepath.Dir(p)); err != nil {
				return "", fmt.Errorf("hostPath type check failed: parent directory of %s: %w", p, err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", fmt.Errorf("hostPath type check failed: create file %s: %w", p, err)
			}
			f.Close()
		} else if !fi.Mode().IsRegular() {
			return fail("file")
		}
	case corev1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return fail("file")
		}
	case corev1.HostPathSocket:
		if !exists || fi.Mode()&fs.ModeSocket == 0 {
			return fail("socket file")
		}
	case corev1.HostPathCharDev:
		if !exists || fi.Mode()&fs.ModeCharDevice == 0 {
			return fail("character device")
		}
	case corev1.HostPathBlockDev:
		if !exists || fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
			return fail("block device")
		}
	default:
		return "", fmt.Errorf("hostPath %s: unknown type %q", p, typ)
	}
	return p, nil
}

type projFile struct {
	path string
	data []byte
	mode int32 // 0: the volume's default mode
}

func keyFiles(kind, name string, data map[string][]byte, items []corev1.KeyToPath) ([]projFile, error) {
	if len(items) == 0 {
		files := make([]projFile, 0, len(data))
		for _, k := range sortedKeys(data) {
			files = append(files, projFile{path: k, data: data[k]})
		}
		return files, nil
	}
	files := make([]projFile, 0, len(items))
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		f := projFile{path: it.Path, data: d}
		if it.Mode != nil {
			f.mode = *it.Mode
		}
		files = append(files, f)
	}
	return files, nil
}

func configMapFiles(ctx context.Context, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, get objectGetter) ([]projFile, error) {
	cm, err := get.ConfigMap(ctx, pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if optional != nil && *optional {
				return nil, nil
			}
			return nil, fmt.Errorf("configmap %q not found", name)
		}
		return nil, fmt.Errorf("get configmap %q: %w", name, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configmap", name, data, items)
}

func secretFiles(ctx context.Context, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, get objectGetter) ([]projFile, error) {
	s, err := get.Secret(ctx, pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if optional != nil && *optional {
				return nil, nil
			}
			return nil, fmt.Errorf("secret %q not found", name)
		}
		return nil, fmt.Errorf("get secret %q: %w", name, err)
	}
	return keyFiles("secret", name, s.Data, items)
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, ec envContext) ([]projFile, error) {
	var files []projFile
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = fieldValue(pod, it.FieldRef.FieldPath, ec)
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return nil, fmt.Errorf("downwardAPI %s: unknown container %q", it.Path, it.ResourceFieldRef.ContainerName)
			}
			v, err = resourceValue(pod, c, it.ResourceFieldRef, ec)
		default:
			err = fmt.Errorf("names no field")
		}
		if err != nil {
			return nil, fmt.Errorf("downwardAPI %s: %w", it.Path, err)
		}
		f := projFile{path: it.Path, data: []byte(v)}
		if it.Mode != nil {
			f.mode = *it.Mode
		}
		files = append(files, f)
	}
	return files, nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// safeRelPath checks that p is a relative path that stays inside its base.
func safeRelPath(p string) (string, error) {
	if p == "" || path.IsAbs(p) || filepath.IsAbs(p) {
		return "", fmt.Errorf("path %q must be relative", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("path %q must not contain '..'", p)
		}
	}
	c := filepath.Clean(filepath.FromSlash(p))
	if c == "." {
		return "", fmt.Errorf("path %q names no file", p)
	}
	return c, nil
}

// writeProjection writes files into dir (replacing what a previous setup
// wrote), each atomically, with its mode or defaultMode (0644 when unset).
func writeProjection(dir string, files []projFile, defaultMode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := int32(0o644)
	if defaultMode != nil {
		mode = *defaultMode
	}
	for _, f := range files {
		rel, err := safeRelPath(f.path)
		if err != nil {
			return err
		}
		m := mode
		if f.mode != 0 {
			m = f.mode
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(p, f.data, os.FileMode(m)&os.ModePerm); err != nil {
			return err
		}
	}
	return nil
}
