package oci

import (
	"fmt"
	"net"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

// Reference is a parsed, fully qualified artifact reference:
// HOST[:PORT]/REPOSITORY(:TAG|@DIGEST).
type Reference struct {
	registry.Reference
}

// ParseReference parses an artifact reference. The first path element must be
// a registry host (it contains a '.' or a ':', or is "localhost"): wasilet
// does not guess a default registry. A reference without tag or digest gets
// the tag "latest"; in HOST/REPO:TAG@DIGEST the digest wins. Errors are
// classed as [errdefs.ErrInvalidArgument].
func ParseReference(ref string) (Reference, error) {
	host, _, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return Reference{}, fmt.Errorf("reference %q has no registry host (write HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]): %w",
			ref, errdefs.ErrInvalidArgument)
	}
	r, err := registry.ParseReference(ref)
	if err != nil {
		return Reference{}, fmt.Errorf("parse reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if r.Reference == "" {
		r.Reference = "latest"
	}
	return Reference{r}, nil
}

// IsDigest reports whether the reference names a digest rather than a tag.
func (r Reference) IsDigest() bool {
	_, err := r.Digest()
	return err == nil
}

// Tag returns the tag, or "" for a digest reference.
func (r Reference) Tag() string {
	if r.IsDigest() {
		return ""
	}
	return r.Reference.Reference
}

// Repo returns HOST/REPOSITORY.
func (r Reference) Repo() string { return r.Registry + "/" + r.Repository }

// WithDigest returns HOST/REPOSITORY@DIGEST.
func (r Reference) WithDigest(d digest.Digest) string { return r.Repo() + "@" + d.String() }

// DefaultPullPolicy is Kubernetes' defaulting of imagePullPolicy: Always for
// the tag "latest" (or no tag), IfNotPresent otherwise (including digests).
func DefaultPullPolicy(ref string) PullPolicy {
	r, err := ParseReference(ref)
	if err != nil || r.IsDigest() || r.Tag() != "latest" {
		return PullIfNotPresent
	}
	return PullAlways
}

// isLoopback reports whether a registry host (with optional port) names the
// local machine: "localhost" or a loopback IP address.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
