package containerdtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// HelloLine is the line the hello image prints on stdout.
const HelloLine = "hello from the container baseline"

const (
	pauseRepo = "containerdtest/pause"
	helloRepo = "containerdtest/hello"
)

// The image programs, built once per test binary.
var programs struct {
	once         sync.Once
	pause, hello []byte
	err          error
}

func buildPrograms() ([]byte, []byte, error) {
	programs.once.Do(func() {
		programs.pause, programs.err = buildStatic("images/pause")
		if programs.err == nil {
			programs.hello, programs.err = buildStatic("images/hello")
		}
	})
	return programs.pause, programs.hello, programs.err
}

// buildStatic builds the main package at rel (relative to this package's
// source directory) as a static linux binary and returns it.
func buildStatic(rel string) ([]byte, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return nil, errors.New("cannot locate the image sources")
	}
	src := filepath.Join(filepath.Dir(file), rel)
	tmp, err := os.MkdirTemp("", "containerdtest-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", src, err, b)
	}
	return os.ReadFile(out)
}

// pushImages builds (once per test binary) and pushes the pause and hello
// images and returns their references. Pushing again is cheap: blobs the
// registry has are not sent.
func pushImages(ctx context.Context, registry string) (pause, hello string, err error) {
	pauseBin, helloBin, err := buildPrograms()
	if err != nil {
		return "", "", fmt.Errorf("build the images' programs: %w", err)
	}
	pause = registry + "/" + pauseRepo + ":v1"
	if err := pushImage(ctx, pause, image{file: "pause", bin: pauseBin, entrypoint: []string{"/pause"}}); err != nil {
		return "", "", err
	}
	hello = registry + "/" + helloRepo + ":v1"
	if err := pushImage(ctx, hello, image{file: "hello", bin: helloBin, entrypoint: []string{"/hello"}}); err != nil {
		return "", "", err
	}
	return pause, hello, nil
}

// PushColdImages pushes n hello images that containerd has never seen:
// each has its own layer (the hello binary plus a file of random bytes), so
// pulling one fetches and unpacks a whole layer. It returns their
// references.
func (c *Containerd) PushColdImages(ctx context.Context, n int) ([]string, error) {
	_, helloBin, err := buildPrograms()
	if err != nil {
		return nil, fmt.Errorf("build the images' programs: %w", err)
	}
	run := make([]byte, 4)
	if _, err := rand.Read(run); err != nil {
		return nil, err
	}
	refs := make([]string, n)
	for i := range refs {
		nonce := make([]byte, 32)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		refs[i] = fmt.Sprintf("%s/%s:cold-%s-%d", c.RegistryAddr, helloRepo, hex.EncodeToString(run), i)
		im := image{file: "hello", bin: helloBin, entrypoint: []string{"/hello"}, nonce: nonce}
		if err := pushImage(ctx, refs[i], im); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// image is a one-layer image holding one static binary at /<file>.
type image struct {
	file       string
	bin        []byte
	entrypoint []string
	nonce      []byte // when set, also in the layer as /nonce
	mode       int64  // file mode (0: 0755)
	platform   *ocispec.Platform
}

// FileImage is a one-layer image holding one file, for PushFileImage.
type FileImage struct {
	Path       string // where the file is in the image, e.g. "app.wasm"
	Data       []byte
	Entrypoint []string
	// Platform goes into the image config (e.g. wasip1/wasm); empty is
	// linux and this machine's architecture.
	Platform ocispec.Platform
}

// PushFileImage pushes a one-layer OCI image (tar+gzip layer holding
// im.Data at im.Path) to ref over plain HTTP: e.g. a Wasm module as a plain
// image whose entrypoint names it, as runwasi and wasilet's shim accept.
func PushFileImage(ctx context.Context, ref string, im FileImage) error {
	i := image{file: im.Path, bin: im.Data, entrypoint: im.Entrypoint, mode: 0o644}
	if im.Platform.OS != "" {
		i.platform = &im.Platform
	}
	return pushImage(ctx, ref, i)
}

// layer is the gzip tar of the image's files (fixed times, so that the
// same program gives the same digest).
func (im image) layer() (gz []byte, diffID digest.Digest, err error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	epoch := time.Unix(0, 0)
	add := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	mode := im.mode
	if mode == 0 {
		mode = 0o755
	}
	if err := add(im.file, mode, im.bin); err != nil {
		return nil, "", err
	}
	if im.nonce != nil {
		if err := add("nonce", 0o644, im.nonce); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gzBuf.Bytes(), digest.FromBytes(tarBuf.Bytes()), nil
}

// pushImage pushes im as an OCI image manifest (config for linux and this
// machine's architecture, one tar+gzip layer) to ref, over plain HTTP.
func pushImage(ctx context.Context, ref string, im image) error {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	repo.PlainHTTP = true
	layer, diffID, err := im.layer()
	if err != nil {
		return fmt.Errorf("push %s: layer: %w", ref, err)
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if im.platform != nil {
		platform = *im.platform
	}
	cfg := ocispec.Image{
		Platform: platform,
		Config:   ocispec.ImageConfig{Entrypoint: im.entrypoint, Env: []string{"PATH=/"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}
	for _, blob := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{layerDesc, layer}, {cfgDesc, cfgJSON}} {
		ok, err := repo.Exists(ctx, blob.desc)
		if err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		if ok {
			continue
		}
		if err := repo.Push(ctx, blob.desc, bytes.NewReader(blob.data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return fmt.Errorf("push %s: blob %s: %w", ref, blob.desc.Digest, err)
		}
	}
	manDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manJSON), Size: int64(len(manJSON))}
	if err := repo.PushReference(ctx, manDesc, bytes.NewReader(manJSON), repo.Reference.Reference); err != nil {
		return fmt.Errorf("push %s: manifest: %w", ref, err)
	}
	return nil
}
