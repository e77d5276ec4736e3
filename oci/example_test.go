package oci_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/wasilet/wasilet/oci"
)

// A node pulls a pod's image with the pod's pull policy and pull secrets,
// falling back to the node's docker config, and maps errors to pod reasons.
func ExampleStore_Pull() {
	ctx := context.Background()
	store, err := oci.NewStore("/var/lib/wasilet/oci")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	secrets := []map[string][]byte{ /* Secret.Data of each imagePullSecret */ }
	fromSecrets, err := oci.PullSecretCredentials(secrets...)
	if err != nil {
		log.Fatal(err) // a malformed secret
	}
	fromNode, err := oci.DockerCredentials()
	if err != nil {
		log.Fatal(err)
	}
	a, err := store.Pull(ctx, "127.0.0.1:5000/hello:v1", oci.PullOptions{
		Policy: oci.PullIfNotPresent,
		Remote: oci.RemoteOptions{Credentials: oci.ChainCredentials(fromSecrets, fromNode)},
	})
	switch {
	case err == nil:
		fmt.Println(a.RepoDigest, a.Kind, a.Path)
	case errors.Is(err, oci.ErrNotPresent): // only under PullNever
		fmt.Println("ErrImageNeverPull:", err)
	case errdefs.IsInvalidArgument(err):
		fmt.Println("InvalidImageName:", err)
	case errdefs.IsNotImplemented(err): // not a Wasm artifact
		fmt.Println("ErrImagePull (unsupported):", err)
	default: // errdefs.IsNotFound, IsUnauthorized, IsDataLoss, IsUnavailable, …
		fmt.Println("ErrImagePull:", err)
	}

	// Later: drop every image no pod uses any more.
	inUse := map[digest.Digest]bool{a.Digest: true}
	if _, err := store.GC(ctx, func(ref string, d digest.Digest) bool { return inUse[d] }); err != nil {
		log.Print(err)
	}
}
