//go:build deps

// Package internal pins the modules wasilet is built from until every one of
// them is imported by real code; go mod tidy keeps what this file names.
package internal

import (
	_ "github.com/bytecodealliance/wasmtime-go/v39"
	_ "github.com/containerd/errdefs"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/spf13/cobra"
	_ "github.com/virtual-kubelet/virtual-kubelet/node"
	_ "github.com/virtual-kubelet/virtual-kubelet/node/api"
	_ "golang.org/x/crypto/blake2b"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/health"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apimachinery/pkg/apis/meta/v1"
	_ "k8s.io/client-go/informers"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/client-go/tools/record"
	_ "k8s.io/client-go/util/certificate"
	_ "k8s.io/client-go/util/workqueue"
	_ "k8s.io/cri-api/pkg/apis/runtime/v1"
	_ "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	_ "k8s.io/kubelet/pkg/apis/podresources/v1"
	_ "oras.land/oras-go/v2"
	_ "oras.land/oras-go/v2/content/oci"
	_ "oras.land/oras-go/v2/registry/remote"
	_ "oras.land/oras-go/v2/registry/remote/auth"
	_ "oras.land/oras-go/v2/registry/remote/credentials"
)
