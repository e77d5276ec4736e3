package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/containerd/errdefs"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Credentials resolves the credential for a registry host ("host:port").
// auth.EmptyCredential (anonymous) is a valid answer, not an error.
type Credentials = auth.CredentialFunc

// RemoteOptions says how to reach registries. The zero value uses the
// docker credential configuration, HTTPS for every registry except loopback
// ones, and oras-go's retrying HTTP client.
type RemoteOptions struct {
	// Credentials resolves per-registry credentials. If nil,
	// [DockerCredentials] is used: $DOCKER_CONFIG/config.json or
	// ~/.docker/config.json, with its credsStore and credHelpers (docker
	// credential helpers). Use [ChainCredentials] to combine sources, e.g.
	// [PullSecretCredentials] before the node's docker config.
	Credentials Credentials

	// PlainHTTP talks plain HTTP to every registry.
	PlainHTTP bool

	// InsecureRegistries lists registries ("host" or "host:port") reached
	// over plain HTTP. Registries on loopback addresses (localhost,
	// 127.0.0.0/8, ::1) always are, the way Docker treats localhost, so a
	// local test registry needs no flag.
	InsecureRegistries []string

	// HTTPClient carries the requests. If nil, oras-go's retrying client
	// (retry.DefaultClient) is used.
	HTTPClient *http.Client

	// UserAgent, if set, is sent with every request.
	UserAgent string
}

// plainHTTP reports whether host is reached over plain HTTP.
func (o RemoteOptions) plainHTTP(host string) bool {
	return o.PlainHTTP || isLoopback(host) || slices.Contains(o.InsecureRegistries, host)
}

// repository returns an oras-go client for ref's repository. Each call gets
// its own auth cache: tokens obtained with one set of credentials (one pod's
// pull secrets) are never reused for a caller with other credentials.
func (o RemoteOptions) repository(ref Reference) (*remote.Repository, error) {
	creds := o.Credentials
	if creds == nil {
		var err error
		if creds, err = DockerCredentials(); err != nil {
			return nil, err
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = retry.DefaultClient
	}
	client := &auth.Client{
		Client:     hc,
		Cache:      auth.NewCache(),
		Credential: creds,
	}
	if o.UserAgent != "" {
		client.SetUserAgent(o.UserAgent)
	}
	return &remote.Repository{
		Client:    client,
		Reference: ref.Reference,
		PlainHTTP: o.plainHTTP(ref.Registry),
	}, nil
}

// DockerCredentials returns credentials from the docker configuration:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json (a missing file means
// anonymous access), honouring "auths", "credsStore" and "credHelpers"
// (docker-credential-<name> helpers on PATH). The file is read on every
// call, so a `docker login` takes effect for the next pull.
func DockerCredentials() (Credentials, error) {
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("read docker credentials: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return credentials.Credential(store), nil
}

// DockerConfigCredentials returns credentials from the docker config file at
// path (same rules as [DockerCredentials], for one explicit file).
func DockerConfigCredentials(path string) (Credentials, error) {
	store, err := credentials.NewStore(path, credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("read docker config %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return credentials.Credential(store), nil
}

// Keys of Kubernetes image pull secrets.
const (
	// SecretKeyDockerConfigJSON holds a kubernetes.io/dockerconfigjson
	// secret: {"auths": {"host": {"auth": base64(user:pass)}}}.
	SecretKeyDockerConfigJSON = ".dockerconfigjson"
	// SecretKeyDockerCfg holds a legacy kubernetes.io/dockercfg secret:
	// {"host": {"auth": …}}.
	SecretKeyDockerCfg = ".dockercfg"
)

// PullSecretCredentials builds credentials from the data of Kubernetes image
// pull secrets (Secret.Data of each imagePullSecret, in pod order). Each
// must hold .dockerconfigjson or .dockercfg. For a host, the first secret
// with an entry for it wins. Malformed data is an error naming the secret's
// position, classed [errdefs.ErrInvalidArgument].
func PullSecretCredentials(secrets ...map[string][]byte) (Credentials, error) {
	var stores []credentials.Store
	for i, data := range secrets {
		raw, ok := data[SecretKeyDockerConfigJSON]
		if !ok {
			cfg, ok := data[SecretKeyDockerCfg]
			if !ok {
				return nil, fmt.Errorf("pull secret %d has neither %s nor %s: %w",
					i, SecretKeyDockerConfigJSON, SecretKeyDockerCfg, errdefs.ErrInvalidArgument)
			}
			var probe map[string]json.RawMessage
			if err := json.Unmarshal(cfg, &probe); err != nil {
				return nil, fmt.Errorf("pull secret %d: decode %s: %v: %w", i, SecretKeyDockerCfg, err, errdefs.ErrInvalidArgument)
			}
			wrapped, err := json.Marshal(map[string]json.RawMessage{"auths": cfg})
			if err != nil {
				return nil, fmt.Errorf("pull secret %d: %w", i, err)
			}
			raw = wrapped
		}
		s, err := credentials.NewMemoryStoreFromDockerConfig(raw)
		if err != nil {
			return nil, fmt.Errorf("pull secret %d: %v: %w", i, err, errdefs.ErrInvalidArgument)
		}
		stores = append(stores, s)
	}
	if len(stores) == 0 {
		return func(context.Context, string) (auth.Credential, error) { return auth.EmptyCredential, nil }, nil
	}
	return credentials.Credential(credentials.NewStoreWithFallbacks(stores[0], stores[1:]...)), nil
}

// ChainCredentials asks each source in turn and returns the first non-empty
// credential (anonymous if none has one). A source's error stops the chain.
func ChainCredentials(sources ...Credentials) Credentials {
	return func(ctx context.Context, host string) (auth.Credential, error) {
		for _, s := range sources {
			if s == nil {
				continue
			}
			c, err := s(ctx, host)
			if err != nil {
				return auth.EmptyCredential, err
			}
			if c != auth.EmptyCredential {
				return c, nil
			}
		}
		return auth.EmptyCredential, nil
	}
}

// StaticCredentials returns the same username and password for one host.
func StaticCredentials(host, username, password string) Credentials {
	return auth.StaticCredential(host, auth.Credential{Username: username, Password: password})
}
