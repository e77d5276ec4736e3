package oci_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/wasilet/wasilet/oci"
)

func TestDetectKind(t *testing.T) {
	tests := []struct {
		name    string
		header  []byte
		want    oci.Kind
		wantErr bool
	}{
		{"module", wasmModule("m"), oci.KindModule, false},
		{"component", wasmComponent("c"), oci.KindComponent, false},
		{"short", []byte{0x00, 'a', 's', 'm'}, "", true},
		{"no magic", []byte("#!/bin/sh\nexit"), "", true},
		{"unknown version", []byte{0x00, 'a', 's', 'm', 0x02, 0x00, 0x00, 0x00}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := oci.DetectKind(tt.header)
			if (err != nil) != tt.wantErr {
				t.Fatalf("DetectKind() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Errorf("error %v is not classed invalid argument", err)
			}
			if got != tt.want {
				t.Errorf("DetectKind() = %q, want %q", got, tt.want)
			}
		})
	}
	if oci.KindModule.OS() != oci.OSWasip1 || oci.KindComponent.OS() != oci.OSWasip2 {
		t.Errorf("Kind.OS: module %s, component %s", oci.KindModule.OS(), oci.KindComponent.OS())
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		in, want string
		digest   bool
		wantErr  bool
	}{
		{"127.0.0.1:5000/app:v1", "127.0.0.1:5000/app:v1", false, false},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", false, false},
		{"localhost/a/b:x", "localhost/a/b:x", false, false},
		{"registry.test/app@sha256:" + strings.Repeat("a", 64), "registry.test/app@sha256:" + strings.Repeat("a", 64), true, false},
		{"registry.test/app:v1@sha256:" + strings.Repeat("a", 64), "registry.test/app@sha256:" + strings.Repeat("a", 64), true, false},
		{"app:v1", "", false, true},
		{"library/app:v1", "", false, true},
		{"registry.test/App:v1", "", false, true},
		{"registry.test/app@sha256:short", "", false, true},
	}
	for _, tt := range tests {
		r, err := oci.ParseReference(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseReference(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("ParseReference(%q) error %v not classed invalid argument", tt.in, err)
			}
			continue
		}
		if r.String() != tt.want || r.IsDigest() != tt.digest {
			t.Errorf("ParseReference(%q) = %s (digest %t), want %s (digest %t)", tt.in, r, r.IsDigest(), tt.want, tt.digest)
		}
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	for ref, want := range map[string]oci.PullPolicy{
		"127.0.0.1:5000/app":                                   oci.PullAlways,
		"127.0.0.1:5000/app:latest":                            oci.PullAlways,
		"127.0.0.1:5000/app:v1":                                oci.PullIfNotPresent,
		"127.0.0.1:5000/app@sha256:" + strings.Repeat("b", 64): oci.PullIfNotPresent,
	} {
		if got := oci.DefaultPullPolicy(ref); got != want {
			t.Errorf("DefaultPullPolicy(%s) = %s, want %s", ref, got, want)
		}
	}
}

func TestPullSecretCredentials(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	jsonSecret := map[string][]byte{
		".dockerconfigjson": []byte(`{"auths":{"127.0.0.1:5000":{"username":"alice","password":"one","auth":"` + b64("alice:one") + `"}}}`),
	}
	cfgSecret := map[string][]byte{
		".dockercfg": []byte(`{"https://reg.test:8443":{"auth":"` + b64("bob:two") + `"},"127.0.0.1:5000":{"auth":"` + b64("carol:three") + `"}}`),
	}
	creds, err := oci.PullSecretCredentials(jsonSecret, cfgSecret)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for host, want := range map[string]auth.Credential{
		"127.0.0.1:5000": {Username: "alice", Password: "one"}, // first secret wins
		"reg.test:8443":  {Username: "bob", Password: "two"},
		"other.test":     auth.EmptyCredential,
	} {
		got, err := creds(ctx, host)
		if err != nil {
			t.Fatalf("creds(%s): %v", host, err)
		}
		if got != want {
			t.Errorf("creds(%s) = %+v, want %+v", host, got, want)
		}
	}

	for name, bad := range map[string]map[string][]byte{
		"no key":      {"token": []byte("x")},
		"broken json": {".dockerconfigjson": []byte("{")},
		"broken cfg":  {".dockercfg": []byte("[")},
		"bad auth":    {".dockerconfigjson": []byte(`{"auths":{"h.test":{"auth":"!!!"}}}`)},
	} {
		if _, err := oci.PullSecretCredentials(bad); err == nil || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: PullSecretCredentials error = %v, want invalid argument", name, err)
		}
	}

	chained := oci.ChainCredentials(nil, creds, oci.StaticCredentials("other.test", "dave", "four"))
	if got, _ := chained(ctx, "other.test"); got.Username != "dave" {
		t.Errorf("chain fell through to %+v, want dave", got)
	}
	if got, _ := chained(ctx, "127.0.0.1:5000"); got.Username != "alice" {
		t.Errorf("chain gave %+v, want alice", got)
	}
}

func TestUnsupportedErrorText(t *testing.T) {
	err := error(&oci.UnsupportedError{
		Ref:               "127.0.0.1:5000/img:v1",
		ManifestMediaType: "application/vnd.oci.image.manifest.v1+json",
		ConfigMediaType:   "application/vnd.oci.image.config.v1+json",
		LayerMediaTypes:   []string{"application/vnd.oci.image.layer.v1.tar+gzip"},
	})
	if !errdefs.IsNotImplemented(err) {
		t.Errorf("not classed not implemented: %v", err)
	}
	var ue *oci.UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatal("errors.As failed")
	}
	for _, want := range []string{
		"application/vnd.oci.image.layer.v1.tar+gzip", // found
		oci.MediaTypeWasmConfig, oci.MediaTypeWasmLayer, oci.MediaTypeWasmToOCIConfig,
		oci.MediaTypeWasmToOCILayer, oci.MediaTypeRunwasiComponentLayer, "wasip1", "wasip2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %s", want, err)
		}
	}
}

func TestProgressPrinter(t *testing.T) {
	var plain, tty bytes.Buffer
	pp := oci.NewProgressPrinter(&plain, false, "pull")
	pt := oci.NewProgressPrinter(&tty, true, "pull")
	d := oci.Progress{}
	d.Descriptor.MediaType = oci.MediaTypeWasmLayer
	d.Descriptor.Digest = digest.Digest("sha256:" + strings.Repeat("c", 64))
	d.Descriptor.Size = 2048
	for _, st := range []oci.ProgressState{oci.ProgressStarted, oci.ProgressRunning, oci.ProgressDone} {
		d.State = st
		d.Done = 2048
		pp.Report(d)
		pt.Report(d)
	}
	if got := plain.String(); strings.Count(got, "\n") != 2 || strings.Contains(got, "\r") ||
		!strings.Contains(got, "cccccccccccc application/wasm: done (2.0 KiB)") {
		t.Errorf("plain output:\n%q", got)
	}
	if got := tty.String(); !strings.Contains(got, "\r") || !strings.Contains(got, "[==============================]") {
		t.Errorf("tty output:\n%q", got)
	}
}

func TestStoreSingleProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := oci.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second open in this process
	// conflicts like another process would.
	if _, err := oci.NewStore(dir); !errdefs.IsUnavailable(err) {
		t.Errorf("second NewStore error = %v, want unavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := oci.NewStore(dir)
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	defer s2.Close()
	if _, err := s.Resolve(context.Background(), "127.0.0.1:1/x:y"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Resolve on closed store error = %v, want failed precondition", err)
	}
}

func TestPullNeverMissing(t *testing.T) {
	s, err := oci.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Pull(context.Background(), "127.0.0.1:1/app:v1", oci.PullOptions{Policy: oci.PullNever})
	if !errors.Is(err, oci.ErrNotPresent) || !errdefs.IsNotFound(err) {
		t.Errorf("Pull Never error = %v, want ErrNotPresent", err)
	}
	_, err = s.Pull(context.Background(), "app:v1", oci.PullOptions{})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("Pull of unqualified ref error = %v, want invalid argument", err)
	}
}

func TestPullUnreachable(t *testing.T) {
	s, err := oci.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := freeAddr(t) // nothing listens there
	_, err = s.Pull(context.Background(), addr+"/app:v1", oci.PullOptions{Policy: oci.PullAlways})
	if !errdefs.IsUnavailable(err) {
		t.Errorf("Pull from closed port error = %v, want unavailable", err)
	}
}
