package pods

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasilet/wasilet/oci"
)

// OCIImages adapts the node's OCI store to ImageService.
type OCIImages struct {
	Store *oci.Store
	// Remote is how to reach registries; pods' image pull secrets are asked
	// before Remote.Credentials (or the node's docker credentials if nil).
	Remote oci.RemoteOptions
}

// Resolve implements ImageService: the store only, no network.
func (o *OCIImages) Resolve(ctx context.Context, ref string) (*Image, error) {
	a, err := o.Store.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return artifactImage(a)
}

// Pull implements ImageService. The pull policy is applied by the caller,
// so the store is always asked to check the registry.
func (o *OCIImages) Pull(ctx context.Context, ref string, secrets []corev1.Secret) (*Image, error) {
	opts := oci.PullOptions{Policy: oci.PullAlways, Remote: o.Remote}
	var data []map[string][]byte
	for _, s := range secrets {
		_, j := s.Data[oci.SecretKeyDockerConfigJSON]
		_, c := s.Data[oci.SecretKeyDockerCfg]
		if j || c { // the kubelet ignores secrets of other types
			data = append(data, s.Data)
		}
	}
	if len(data) > 0 {
		creds, err := oci.PullSecretCredentials(data...)
		if err != nil {
			return nil, fmt.Errorf("image pull secrets: %w", err)
		}
		base := o.Remote.Credentials
		if base == nil {
			if dc, err := oci.DockerCredentials(); err == nil {
				base = dc
			}
		}
		opts.Remote.Credentials = oci.ChainCredentials(creds, base)
	}
	a, err := o.Store.Pull(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	return artifactImage(a)
}

func artifactImage(a *oci.Artifact) (*Image, error) {
	if a == nil {
		return nil, fmt.Errorf("image store returned no artifact")
	}
	read := func() ([]byte, error) {
		wasm, err := a.ReadWasm()
		if err != nil {
			return nil, fmt.Errorf("read Wasm layer of %s: %w", a.Ref, err)
		}
		return wasm, nil
	}
	return &Image{Read: read, Digest: a.Layer.Digest.String(), ID: a.RepoDigest}, nil
}
