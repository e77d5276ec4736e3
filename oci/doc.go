// Package oci owns moving Wasm artifacts between OCI registries and the node:
// pull by tag or digest in every accepted Wasm layout, push in the CNCF Wasm
// artifact layout, a content-addressed local store with digest verification and
// garbage collection, and registry credentials. It is a leaf: it imports no
// other wasilet package (and nothing of Kubernetes), and is built on oras-go v2.
//
// # Store and pull
//
// [NewStore] opens an OCI image layout directory (the node uses
// <data-dir>/oci, the CLI [DefaultStoreDir]). [Store.Pull] resolves a
// reference, downloads what the store lacks, verifies every byte against its
// digest before it becomes visible, and records the reference so
// [Store.Resolve] answers offline; [PullPolicy] is Kubernetes'
// imagePullPolicy. Concurrent pulls of one digest share one download (each
// caller's own credentials still resolve the manifest first). Wasm layers
// above PullOptions.MaxLayerSize (default 1 GiB) are refused before download;
// a stored blob found damaged on disk is dropped and fetched again.
// [Store.GC] deletes blobs no reference reaches (optionally dropping
// references a keep function rejects first); [Store.Remove] forgets
// references; [Store.List] lists what is stored.
//
// Accepted layouts (anything else fails with [*UnsupportedError], classed
// errdefs.ErrNotImplemented, naming the media types found and accepted):
//
//   - CNCF Wasm artifact: config application/vnd.wasm.config.v0+json, one
//     layer application/wasm;
//   - wasm-to-oci / Krustlet: config application/vnd.wasm.config.v1+json, one
//     layer application/vnd.wasm.content.layer.v1+wasm;
//   - runwasi: config application/vnd.oci.image.config.v1+json, one layer
//     application/vnd.bytecodealliance.wasm.component.layer.v0+wasm;
//   - an OCI image index (or Docker manifest list) whose entries carry
//     platform os wasip1 or wasip2 and architecture wasm, pointing at one of
//     the above. [DefaultPlatforms] prefers wasip1, then wasip2;
//     PullOptions.Platforms changes the order.
//
// [LocateWasm] applies the same rules to an artifact already in another
// content store (the shim reads containerd's), given a function that reads
// blobs.
//
// The layer must start with a Wasm header; [Artifact.Kind] says module or
// component from that header.
//
// # Push
//
// [Push] uploads a module or component in the CNCF layout (config with
// created, architecture wasm, os wasip1/wasip2 from the binary header, and
// layerDigests; annotations org.opencontainers.image.created/.source) under
// the reference's tag and extra tags.
//
// # Registries and credentials
//
// [RemoteOptions] selects credentials ([DockerCredentials] by default: the
// docker config file and its credential helpers; [PullSecretCredentials]
// for Kubernetes imagePullSecrets; [ChainCredentials] to combine) and plain
// HTTP. Registries on loopback addresses (localhost, 127.0.0.0/8, ::1) are
// always reached over plain HTTP, the way Docker treats localhost; others
// need PlainHTTP or InsecureRegistries.
//
// # Errors
//
// Errors carry containerd errdefs classes (see errors.go): invalid reference
// ErrInvalidArgument, missing ErrNotFound ([ErrNotPresent] for the store),
// credentials missing/wrong ErrUnauthenticated, refused ErrPermissionDenied,
// digest mismatch ErrDataLoss ([ErrDigestMismatch]), not Wasm
// ErrNotImplemented, registry down ErrUnavailable.
//
// # Progress
//
// PullOptions.Progress and PushOptions.Progress receive [Progress] reports;
// [ProgressPrinter] renders them as bars on a terminal and plain lines
// otherwise.
package oci
