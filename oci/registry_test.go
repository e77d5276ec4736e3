package oci_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wasilet/wasilet/oci"
)

// anonymous is a RemoteOptions that ignores the developer's docker config.
var anonymous = oci.RemoteOptions{Credentials: oci.ChainCredentials()}

func newStore(t testing.TB) *oci.Store {
	t.Helper()
	s, err := oci.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	ctx := ctxT(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		wasm []byte
		kind oci.Kind
		os   string
	}{
		{"module", wasmModule("roundtrip"), oci.KindModule, oci.OSWasip1},
		{"component", wasmComponent("roundtrip"), oci.KindComponent, oci.OSWasip2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, tc.name+".wasm", tc.wasm)
			ref := reg + "/roundtrip/" + tc.name + ":v1"
			created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			res, err := oci.Push(ctx, file, ref, oci.PushOptions{
				Remote: anonymous, Tags: []string{"extra"}, Source: "https://source.test/repo",
				Created: created, Annotations: map[string]string{"k": "v"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != tc.kind || res.OS != tc.os || res.Layer.Digest != digest.FromBytes(tc.wasm) {
				t.Errorf("push result %+v", res)
			}
			s := newStore(t)
			for _, r := range []string{ref, reg + "/roundtrip/" + tc.name + ":extra", res.RepoDigest} {
				a, err := s.Pull(ctx, r, oci.PullOptions{Remote: anonymous})
				if err != nil {
					t.Fatal(err)
				}
				got, err := a.ReadWasm()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.wasm) {
					t.Errorf("%s: pulled bytes differ", r)
				}
				if a.Digest != res.Manifest.Digest || a.Format != oci.FormatCNCF || a.Kind != tc.kind ||
					a.Platform == nil || a.Platform.OS != tc.os || a.Platform.Architecture != "wasm" ||
					a.ConfigMediaType != oci.MediaTypeWasmConfig || a.Layer.MediaType != oci.MediaTypeWasmLayer {
					t.Errorf("%s: artifact %+v", r, a)
				}
				if a.Annotations[ocispec.AnnotationSource] != "https://source.test/repo" ||
					a.Annotations[ocispec.AnnotationCreated] != "2026-01-02T03:04:05Z" || a.Annotations["k"] != "v" {
					t.Errorf("%s: annotations %v", r, a.Annotations)
				}
			}
		})
	}
}

// TestOrasPullsWhatWePush: the real oras CLI reads the CNCF layout Push writes.
func TestOrasPullsWhatWePush(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	ctx := ctxT(t)
	dir := t.TempDir()
	wasm := wasmModule("oras-pull")
	file := writeFile(t, dir, "app.wasm", wasm)
	ref := reg + "/orascheck/app:v1"
	res, err := oci.Push(ctx, file, ref, oci.PushOptions{Remote: anonymous, Tags: []string{"v1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{ref, reg + "/orascheck/app:v1.0"} {
		out := filepath.Join(t.TempDir(), "out")
		oras(t, dir, "pull", "--plain-http", "-o", out, r)
		got, err := os.ReadFile(filepath.Join(out, "app.wasm"))
		if err != nil {
			t.Fatalf("oras pull %s wrote no app.wasm: %v", r, err)
		}
		if !bytes.Equal(got, wasm) {
			t.Errorf("oras pull %s: bytes differ", r)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(oras(t, dir, "manifest", "fetch", "--plain-http", ref)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != oci.MediaTypeWasmConfig || len(m.Layers) != 1 || m.Layers[0].MediaType != oci.MediaTypeWasmLayer {
		t.Errorf("manifest as oras sees it: %+v", m)
	}
	var cfg oci.WasmConfig
	if err := json.Unmarshal([]byte(oras(t, dir, "manifest", "fetch-config", "--plain-http", ref)), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "wasm" || cfg.OS != "wasip1" || len(cfg.LayerDigests) != 1 ||
		cfg.LayerDigests[0] != res.Layer.Digest.String() || cfg.Created == "" {
		t.Errorf("config as oras sees it: %+v", cfg)
	}
	resolved := strings.TrimSpace(oras(t, dir, "resolve", "--plain-http", ref))
	if resolved != res.Manifest.Digest.String() {
		t.Errorf("oras resolve = %s, want %s", resolved, res.Manifest.Digest)
	}
}

// TestPullFormats: Pull reads every accepted layout pushed by the real oras
// CLI, including a hand-made index with wasip1 and wasip2 platforms.
func TestPullFormats(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	ctx := ctxT(t)
	dir := t.TempDir()
	module := wasmModule("formats")
	component := wasmComponent("formats")
	writeFile(t, dir, "module.wasm", module)
	writeFile(t, dir, "component.wasm", component)
	writeFile(t, dir, "cncf-module.json", []byte(`{"created":"2026-01-01T00:00:00Z","architecture":"wasm","os":"wasip1","layerDigests":["`+digest.FromBytes(module).String()+`"]}`))
	writeFile(t, dir, "cncf-component.json", []byte(`{"created":"2026-01-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":["`+digest.FromBytes(component).String()+`"]}`))
	writeFile(t, dir, "wasm-to-oci.json", []byte(`{}`))
	writeFile(t, dir, "runwasi.json", []byte(`{"architecture":"wasm","os":"wasip2","rootfs":{"type":"layers","diff_ids":[]},"config":{"Entrypoint":["/component.wasm"]}}`))

	cncfModule := orasPushJSON(t, dir, "--config", "cncf-module.json:"+oci.MediaTypeWasmConfig,
		reg+"/formats/cncf:module", "module.wasm:"+oci.MediaTypeWasmLayer)
	cncfComponent := orasPushJSON(t, dir, "--config", "cncf-component.json:"+oci.MediaTypeWasmConfig,
		reg+"/formats/cncf:component", "component.wasm:"+oci.MediaTypeWasmLayer)
	orasPushJSON(t, dir, "--config", "wasm-to-oci.json:"+oci.MediaTypeWasmToOCIConfig,
		reg+"/formats/wasm-to-oci:v1", "module.wasm:"+oci.MediaTypeWasmToOCILayer)
	orasPushJSON(t, dir, "--config", "runwasi.json:"+ocispec.MediaTypeImageConfig,
		reg+"/formats/runwasi:v1", "component.wasm:"+oci.MediaTypeRunwasiComponentLayer)

	// A multi-platform index over the two CNCF manifests (pushed into the
	// index's repository by digest first), plus a linux entry to skip.
	oras(t, dir, "cp", "--from-plain-http", "--to-plain-http", reg+"/formats/cncf@"+cncfModule.Digest, reg+"/formats/index@"+cncfModule.Digest)
	oras(t, dir, "cp", "--from-plain-http", "--to-plain-http", reg+"/formats/cncf@"+cncfComponent.Digest, reg+"/formats/index@"+cncfComponent.Digest)
	index := ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(cncfComponent.Digest), Size: cncfComponent.Size,
				Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(cncfComponent.Digest), Size: cncfComponent.Size,
				Platform: &ocispec.Platform{OS: "wasip2", Architecture: "wasm"}},
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(cncfModule.Digest), Size: cncfModule.Size,
				Platform: &ocispec.Platform{OS: "wasip1", Architecture: "wasm"}},
		},
	}
	index.SchemaVersion = 2
	ib, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "index.json", ib)
	oras(t, dir, "manifest", "push", "--plain-http", "--media-type", ocispec.MediaTypeImageIndex, reg+"/formats/index:v1", "index.json")

	tests := []struct {
		ref       string
		platforms []string
		format    oci.Format
		kind      oci.Kind
		os        string
		wasm      []byte
		manifest  string
	}{
		{reg + "/formats/cncf:module", nil, oci.FormatCNCF, oci.KindModule, "wasip1", module, cncfModule.Digest},
		{reg + "/formats/cncf:component", nil, oci.FormatCNCF, oci.KindComponent, "wasip2", component, cncfComponent.Digest},
		{reg + "/formats/wasm-to-oci:v1", nil, oci.FormatWasmToOCI, oci.KindModule, "", module, ""},
		{reg + "/formats/runwasi:v1", nil, oci.FormatRunwasi, oci.KindComponent, "wasip2", component, ""},
		{reg + "/formats/index:v1", nil, oci.FormatCNCF, oci.KindModule, "wasip1", module, cncfModule.Digest},
		{reg + "/formats/index:v1", []string{"wasip2", "wasip1"}, oci.FormatCNCF, oci.KindComponent, "wasip2", component, cncfComponent.Digest},
	}
	// One store, two preferences: the second pull fetches the other
	// platform instead of answering with the stored one.
	t.Run("index/one-store", func(t *testing.T) {
		s := newStore(t)
		ref := reg + "/formats/index:v1"
		p1, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullIfNotPresent})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullIfNotPresent, Platforms: []string{"wasip2", "wasip1"}})
		if err != nil {
			t.Fatal(err)
		}
		if p1.Kind != oci.KindModule || p2.Kind != oci.KindComponent || p2.Cached {
			t.Errorf("first pull %s (cached %t), second %s (cached %t); want module, then a fetched component",
				p1.Kind, p1.Cached, p2.Kind, p2.Cached)
		}
		if p1.Digest != p2.Digest {
			t.Errorf("index digests differ: %s, %s", p1.Digest, p2.Digest)
		}
		r, err := s.Resolve(ctx, ref)
		if err != nil || r.Kind != oci.KindModule {
			t.Errorf("Resolve of the index = %v, %v; want the wasip1 module", r, err)
		}
	})
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.ref, reg+"/formats/")+"/"+strings.Join(tt.platforms, ","), func(t *testing.T) {
			s := newStore(t)
			a, err := s.Pull(ctx, tt.ref, oci.PullOptions{Remote: anonymous, Platforms: tt.platforms})
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.ReadWasm()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.wasm) {
				t.Error("pulled bytes differ")
			}
			if a.Format != tt.format || a.Kind != tt.kind {
				t.Errorf("format %s kind %s, want %s %s", a.Format, a.Kind, tt.format, tt.kind)
			}
			gotOS := ""
			if a.Platform != nil {
				gotOS = a.Platform.OS
			}
			if gotOS != tt.os {
				t.Errorf("platform os %q, want %q", gotOS, tt.os)
			}
			if tt.manifest != "" && a.Manifest.Digest.String() != tt.manifest {
				t.Errorf("manifest %s, want %s", a.Manifest.Digest, tt.manifest)
			}
			// The store answers offline for the same reference afterwards.
			b, err := s.Resolve(ctx, tt.ref)
			if err != nil {
				t.Fatalf("Resolve after pull: %v", err)
			}
			if b.Path != a.Path || b.Digest != a.Digest {
				t.Errorf("Resolve = %s %s, Pull = %s %s", b.Digest, b.Path, a.Digest, a.Path)
			}
		})
	}
}

// TestPullUnsupported: anything outside the accepted layouts fails with an
// error naming the media types found and accepted.
func TestPullUnsupported(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	ctx := ctxT(t)
	dir := t.TempDir()
	writeFile(t, dir, "layer.tar.gz", []byte("\x1f\x8b not really a tarball"))
	writeFile(t, dir, "image.json", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	writeFile(t, dir, "module.wasm", wasmModule("unsupported"))
	writeFile(t, dir, "notwasm.bin", []byte("#!/bin/sh\necho this is no wasm binary\n"))
	writeFile(t, dir, "wasm.json", []byte(`{"architecture":"wasm","os":"wasip1"}`))
	writeFile(t, dir, "wrongarch.json", []byte(`{"architecture":"amd64","os":"wasip1"}`))
	orasPushJSON(t, dir, "--config", "image.json:"+ocispec.MediaTypeImageConfig,
		reg+"/bad/container:v1", "layer.tar.gz:"+ocispec.MediaTypeImageLayerGzip)
	orasPushJSON(t, dir, "--config", "image.json:"+ocispec.MediaTypeImageConfig,
		reg+"/bad/mismatch:v1", "module.wasm:"+oci.MediaTypeWasmLayer)
	orasPushJSON(t, dir, "--config", "wasm.json:"+oci.MediaTypeWasmConfig,
		reg+"/bad/twolayers:v1", "module.wasm:"+oci.MediaTypeWasmLayer, "layer.tar.gz:"+ocispec.MediaTypeImageLayerGzip)
	orasPushJSON(t, dir, "--config", "wrongarch.json:"+oci.MediaTypeWasmConfig,
		reg+"/bad/arch:v1", "module.wasm:"+oci.MediaTypeWasmLayer)
	orasPushJSON(t, dir, "--config", "wasm.json:"+oci.MediaTypeWasmConfig,
		reg+"/bad/notwasm:v1", "notwasm.bin:"+oci.MediaTypeWasmLayer)
	linuxOnly := orasPushJSON(t, dir, "--config", "image.json:"+ocispec.MediaTypeImageConfig,
		reg+"/bad/index:amd64", "layer.tar.gz:"+ocispec.MediaTypeImageLayerGzip)
	ib, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex,
		"manifests": []any{map[string]any{
			"mediaType": ocispec.MediaTypeImageManifest, "digest": linuxOnly.Digest, "size": linuxOnly.Size,
			"platform": map[string]string{"os": "linux", "architecture": "amd64"},
		}},
	})
	writeFile(t, dir, "index.json", ib)
	oras(t, dir, "manifest", "push", "--plain-http", "--media-type", ocispec.MediaTypeImageIndex, reg+"/bad/index:v1", "index.json")

	for _, tt := range []struct {
		repo      string
		want      []string
		notImpl   bool
		leaveNone bool
	}{
		{"container", []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig, oci.MediaTypeWasmLayer, oci.MediaTypeWasmConfig}, true, true},
		{"mismatch", []string{ocispec.MediaTypeImageConfig, oci.MediaTypeWasmLayer, "config media type does not match"}, true, true},
		{"twolayers", []string{"exactly one layer", ocispec.MediaTypeImageLayerGzip}, true, true},
		{"arch", []string{`architecture is "amd64"`}, true, false},
		{"notwasm", []string{"not a wasm binary"}, false, true},
		{"index", []string{"linux/amd64", "wasip1", "wasip2"}, true, true},
	} {
		t.Run(tt.repo, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Pull(ctx, reg+"/bad/"+tt.repo+":v1", oci.PullOptions{Remote: anonymous})
			if err == nil {
				t.Fatal("pull succeeded")
			}
			if tt.notImpl && !errdefs.IsNotImplemented(err) {
				t.Errorf("error not classed not implemented: %v", err)
			}
			if !tt.notImpl && !errdefs.IsInvalidArgument(err) {
				t.Errorf("error not classed invalid argument: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if _, err := s.Resolve(ctx, reg+"/bad/"+tt.repo+":v1"); !errors.Is(err, oci.ErrNotPresent) {
				t.Errorf("a refused artifact is resolvable: %v", err)
			}
			if tt.leaveNone {
				if n := len(blobFiles(t, s)); n > 1 {
					t.Errorf("store holds %d blobs after a refused pull, want at most the config", n)
				}
			}
		})
	}
}

// TestPullLayerLimit: a layer larger than MaxLayerSize is refused before
// any download.
func TestPullLayerLimit(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	p := startProxy(t, reg)
	ctx := ctxT(t)
	file := writeFile(t, t.TempDir(), "big.wasm", append(wasmModule("limit"), make([]byte, 4096)...))
	res, err := oci.Push(ctx, file, reg+"/limit/app:v1", oci.PushOptions{Remote: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	_, err = s.Pull(ctx, p.Addr+"/limit/app:v1", oci.PullOptions{Remote: anonymous, MaxLayerSize: 4096})
	if !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("pull over the limit error = %v, want resource exhausted", err)
	}
	if n := p.count("GET", "blobs", res.Layer.Digest.String()); n != 0 {
		t.Errorf("layer over the limit was requested %d times", n)
	}
	if _, err := s.Pull(ctx, p.Addr+"/limit/app:v1", oci.PullOptions{Remote: anonymous, MaxLayerSize: res.Layer.Size}); err != nil {
		t.Errorf("pull at the limit: %v", err)
	}
}

// blobFiles lists the blob files of a store.
func blobFiles(t testing.TB, s *oci.Store) []string {
	t.Helper()
	var out []string
	matches, err := filepath.Glob(filepath.Join(s.Root(), "blobs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		out = append(out, filepath.Base(filepath.Dir(m))+":"+filepath.Base(m))
	}
	return out
}

func ingestFiles(t testing.TB, s *oci.Store) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(s.Root(), "ingest", "*"))
	return m
}

func TestPullNotFound(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	s := newStore(t)
	_, err := s.Pull(ctxT(t), reg+"/nothing/here:v1", oci.PullOptions{Remote: anonymous})
	if !errdefs.IsNotFound(err) || errors.Is(err, oci.ErrNotPresent) {
		t.Errorf("Pull of a missing tag error = %v, want not found from the registry", err)
	}
}

// TestPullBasicAuth: a registry requiring basic auth works through a docker
// config file (DOCKER_CONFIG) and through pull secrets, and fails clearly
// without credentials.
func TestPullBasicAuth(t *testing.T) {
	reg := startRegistry(t, registryOptions{User: "wasi", Password: "s3cret"})
	ctx := ctxT(t)
	dir := t.TempDir()
	wasm := wasmModule("auth")
	file := writeFile(t, dir, "auth.wasm", wasm)
	ref := reg + "/private/app:v1"

	noCreds := t.TempDir()
	t.Setenv("DOCKER_CONFIG", noCreds)
	if _, err := oci.Push(ctx, file, ref, oci.PushOptions{}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("push without credentials error = %v, want unauthorized", err)
	}

	withCreds := t.TempDir()
	authValue := base64.StdEncoding.EncodeToString([]byte("wasi:s3cret"))
	writeFile(t, withCreds, "config.json", []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg, authValue)))
	t.Setenv("DOCKER_CONFIG", withCreds)
	res, err := oci.Push(ctx, file, ref, oci.PushOptions{})
	if err != nil {
		t.Fatalf("push with docker config: %v", err)
	}
	a, err := newStore(t).Pull(ctx, ref, oci.PullOptions{Policy: oci.PullAlways})
	if err != nil {
		t.Fatalf("pull with docker config: %v", err)
	}
	if a.Digest != res.Manifest.Digest {
		t.Errorf("pulled %s, pushed %s", a.Digest, res.Manifest.Digest)
	}

	// Without credentials: unauthorized, with a message that says so.
	t.Setenv("DOCKER_CONFIG", noCreds)
	s := newStore(t)
	_, err = s.Pull(ctx, ref, oci.PullOptions{Policy: oci.PullAlways})
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "requires authentication") {
		t.Errorf("pull without credentials error = %v, want unauthorized naming the cause", err)
	}
	// Wrong password: unauthorized as well.
	_, err = s.Pull(ctx, ref, oci.PullOptions{Policy: oci.PullAlways,
		Remote: oci.RemoteOptions{Credentials: oci.StaticCredentials(reg, "wasi", "wrong")}})
	if !errdefs.IsUnauthorized(err) {
		t.Errorf("pull with a wrong password error = %v, want unauthorized", err)
	}
	// Kubernetes pull secret data, as the node passes it.
	secret := map[string][]byte{".dockerconfigjson": []byte(fmt.Sprintf(`{"auths":{%q:{"username":"wasi","password":"s3cret"}}}`, reg))}
	creds, err := oci.PullSecretCredentials(secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, ref, oci.PullOptions{Policy: oci.PullAlways, Remote: oci.RemoteOptions{Credentials: creds}}); err != nil {
		t.Errorf("pull with pull secret: %v", err)
	}
}

// TestPullTamperedBlob: a registry (here a proxy in front of one) serving a
// blob that does not match its digest fails the pull with a digest error and
// leaves nothing of the blob in the store.
func TestPullTamperedBlob(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	p := startProxy(t, reg)
	ctx := ctxT(t)
	wasm := wasmModule(strings.Repeat("x", 100))
	file := writeFile(t, t.TempDir(), "tamper.wasm", wasm)
	res, err := oci.Push(ctx, file, reg+"/tamper/app:v1", oci.PushOptions{Remote: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	p.setCorrupt(res.Layer.Digest.String())
	s := newStore(t)
	ref := p.Addr + "/tamper/app:v1"
	_, err = s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous})
	if !errors.Is(err, oci.ErrDigestMismatch) || !errdefs.IsDataLoss(err) {
		t.Fatalf("pull of a tampered blob error = %v, want digest mismatch", err)
	}
	if !strings.Contains(err.Error(), res.Layer.Digest.String()) {
		t.Errorf("error does not name the blob: %v", err)
	}
	for _, b := range blobFiles(t, s) {
		if b == res.Layer.Digest.String() {
			t.Errorf("tampered blob %s is in the store", b)
		}
	}
	if in := ingestFiles(t, s); len(in) != 0 {
		t.Errorf("partial files left in ingest: %v (pull error %v)", in, err)
	}
	if _, err := s.Resolve(ctx, ref); !errors.Is(err, oci.ErrNotPresent) {
		t.Errorf("tampered reference resolves: %v", err)
	}
	// The config of a tampered manifest is refused the same way (in a
	// fresh store: the first one kept the intact config).
	p2 := startProxy(t, reg)
	p2.setCorrupt(res.Config.Digest.String())
	s2 := newStore(t)
	_, err = s2.Pull(ctx, p2.Addr+"/tamper/app:v1", oci.PullOptions{Remote: anonymous})
	if !errors.Is(err, oci.ErrDigestMismatch) {
		t.Errorf("pull of a tampered config error = %v, want digest mismatch", err)
	}
	if got := blobFiles(t, s2); len(got) != 0 {
		t.Errorf("store holds %v after a tampered config", got)
	}
	// Once the registry serves the right bytes, the same store pulls fine.
	a, err := s.Pull(ctx, reg+"/tamper/app:v1", oci.PullOptions{Remote: anonymous})
	if err != nil {
		t.Fatalf("pull of intact content after a tampered attempt: %v", err)
	}
	if got, _ := a.ReadWasm(); !bytes.Equal(got, wasm) {
		t.Error("pulled bytes differ")
	}
}

// TestConcurrentPullsFetchOnce: pulls of one digest at the same time share
// one blob download.
func TestConcurrentPullsFetchOnce(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	p := startProxy(t, reg)
	ctx := ctxT(t)
	big := make([]byte, 4<<20)
	copy(big, wasmModule("concurrent"))
	file := writeFile(t, t.TempDir(), "big.wasm", big)
	res, err := oci.Push(ctx, file, reg+"/concurrent/app:v1", oci.PushOptions{Remote: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	arts := make([]*oci.Artifact, n)
	for i := range n {
		wg.Go(func() {
			// two references to the same digest
			ref := p.Addr + "/concurrent/app:v1"
			if i%2 == 1 {
				ref = p.Addr + "/concurrent/app@" + res.Manifest.Digest.String()
			}
			arts[i], errs[i] = s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullAlways})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if arts[i].Path != arts[0].Path {
			t.Errorf("pull %d got %s, pull 0 %s", i, arts[i].Path, arts[0].Path)
		}
	}
	if got := p.count("GET", "blobs", res.Layer.Digest.String()); got != 1 {
		t.Errorf("layer fetched %d times by %d concurrent pulls, want 1", got, n)
	}
	if got := p.count("GET", "blobs", res.Config.Digest.String()); got != 1 {
		t.Errorf("config fetched %d times, want 1", got)
	}
}

// TestPullCached: a pull of a digest the store has costs one manifest HEAD
// under Always and nothing under IfNotPresent; it survives a reopen.
func TestPullCached(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	p := startProxy(t, reg)
	ctx := ctxT(t)
	file := writeFile(t, t.TempDir(), "cached.wasm", wasmModule("cached"))
	if _, err := oci.Push(ctx, file, reg+"/cached/app:v1", oci.PushOptions{Remote: anonymous}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s, err := oci.NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	ref := p.Addr + "/cached/app:v1"
	first, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullAlways})
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || p.count("GET", "blobs", "") != 2 {
		t.Errorf("first pull: cached %t, blob GETs %d (want false, 2)", first.Cached, p.count("GET", "blobs", ""))
	}
	p.reset()
	again, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullAlways})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Path != first.Path {
		t.Errorf("second pull not served from the store: %+v", again)
	}
	if b, m, h := p.count("GET", "blobs", ""), p.count("GET", "manifests", ""), p.count("HEAD", "manifests", ""); b != 0 || m != 0 || h != 1 {
		t.Errorf("cached pull under Always: %d blob GETs, %d manifest GETs, %d manifest HEADs; want 0, 0, 1", b, m, h)
	}
	p.reset()
	if _, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullIfNotPresent}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.counts); n != 0 {
		t.Errorf("IfNotPresent pull of a stored reference made requests: %v", p.counts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart, Resolve and Never work from disk.
	s2, err := oci.NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, r := range []string{ref, first.RepoDigest} {
		a, err := s2.Pull(ctx, r, oci.PullOptions{Policy: oci.PullNever})
		if err != nil {
			t.Fatalf("Never pull of %s after reopen: %v", r, err)
		}
		if a.Path != first.Path || !a.Cached {
			t.Errorf("after reopen %s: %+v", r, a)
		}
	}
	imgs, err := s2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || len(imgs[0].Refs) != 2 || imgs[0].Digest != first.Digest || imgs[0].Size == 0 {
		t.Errorf("List = %+v", imgs)
	}
}

// TestDamagedStoreHeals: a stored manifest damaged on disk is dropped and
// fetched again rather than failing every pull.
func TestDamagedStoreHeals(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	ctx := ctxT(t)
	file := writeFile(t, t.TempDir(), "heal.wasm", wasmModule("heal"))
	res, err := oci.Push(ctx, file, reg+"/heal/app:v1", oci.PushOptions{Remote: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	ref := reg + "/heal/app:v1"
	if _, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous}); err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(s.Root(), "blobs", "sha256", res.Manifest.Digest.Encoded())
	if err := os.Chmod(mpath, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(mpath, b, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, ref); !errors.Is(err, oci.ErrNotPresent) {
		t.Errorf("Resolve of a damaged manifest error = %v, want ErrNotPresent", err)
	}
	a, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullIfNotPresent})
	if err != nil {
		t.Fatalf("pull after damage: %v", err)
	}
	if a.Digest != res.Manifest.Digest {
		t.Errorf("pulled %s, want %s", a.Digest, res.Manifest.Digest)
	}
	if got, err := os.ReadFile(mpath); err != nil || digest.FromBytes(got) != res.Manifest.Digest {
		t.Errorf("manifest not restored: %v", err)
	}
}

// TestGC: blobs reachable from a reference stay, the others go.
func TestGC(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	ctx := ctxT(t)
	dir := t.TempDir()
	s := newStore(t)
	var arts []*oci.Artifact
	for _, name := range []string{"a", "b", "c"} {
		file := writeFile(t, dir, name+".wasm", wasmModule("gc-"+name))
		if _, err := oci.Push(ctx, file, reg+"/gc/"+name+":v1", oci.PushOptions{Remote: anonymous}); err != nil {
			t.Fatal(err)
		}
		a, err := s.Pull(ctx, reg+"/gc/"+name+":v1", oci.PullOptions{Remote: anonymous})
		if err != nil {
			t.Fatal(err)
		}
		arts = append(arts, a)
	}
	// Nothing is unreferenced yet.
	st, err := s.GC(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.RemovedBlobs != 0 {
		t.Errorf("GC with every artifact referenced removed %d blobs", st.RemovedBlobs)
	}
	// Drop "a" by reference; drop "b" through keep; "c" stays.
	if err := s.Remove(ctx, arts[0].Ref, arts[0].RepoDigest); err != nil {
		t.Fatal(err)
	}
	st, err = s.GC(ctx, func(ref string, d digest.Digest) bool { return d != arts[1].Digest })
	if err != nil {
		t.Fatal(err)
	}
	if len(st.RemovedRefs) != 2 || st.RemovedBlobs != 6 {
		// a and b: manifest, config, layer each (the configs differ by layerDigests)
		t.Errorf("GC stats %+v, want 2 references (b's) and 6 blobs removed", st)
	}
	for i, a := range arts {
		_, err := os.Stat(a.Path)
		if i < 2 && !os.IsNotExist(err) {
			t.Errorf("%s: layer still there after GC (%v)", a.Ref, err)
		}
		if i == 2 && err != nil {
			t.Errorf("%s: referenced layer removed: %v", a.Ref, err)
		}
		_, err = s.Resolve(ctx, a.Ref)
		if i < 2 && !errors.Is(err, oci.ErrNotPresent) {
			t.Errorf("%s resolves after GC: %v", a.Ref, err)
		}
		if i == 2 && err != nil {
			t.Errorf("%s does not resolve after GC: %v", a.Ref, err)
		}
	}
	if got := len(blobFiles(t, s)); got != 3 {
		t.Errorf("store holds %d blobs, want 3 (c's manifest, config, layer)", got)
	}
	// The removed artifact comes back with a pull.
	if _, err := s.Pull(ctx, arts[0].Ref, oci.PullOptions{Remote: anonymous}); err != nil {
		t.Errorf("pull after GC: %v", err)
	}
}

// BenchmarkPullCached measures a pull under Always of a digest the store
// already has: one manifest HEAD, no blob transfer.
func BenchmarkPullCached(b *testing.B) {
	reg := startRegistry(b, registryOptions{})
	ctx := ctxT(b)
	big := make([]byte, 3<<20)
	copy(big, wasmModule("bench"))
	file := writeFile(b, b.TempDir(), "bench.wasm", big)
	if _, err := oci.Push(ctx, file, reg+"/bench/app:v1", oci.PushOptions{Remote: anonymous}); err != nil {
		b.Fatal(err)
	}
	s := newStore(b)
	ref := reg + "/bench/app:v1"
	if _, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous}); err != nil {
		b.Fatal(err)
	}
	b.Run("Always", func(b *testing.B) {
		for b.Loop() {
			a, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullAlways})
			if err != nil || !a.Cached {
				b.Fatalf("pull: %v (cached %v)", err, a != nil && a.Cached)
			}
		}
	})
	b.Run("IfNotPresent", func(b *testing.B) {
		for b.Loop() {
			a, err := s.Pull(ctx, ref, oci.PullOptions{Remote: anonymous, Policy: oci.PullIfNotPresent})
			if err != nil || !a.Cached {
				b.Fatalf("pull: %v", err)
			}
		}
	})
}
