package shim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/shim"
)

// pushRunwasi pushes wasm in runwasi's layout: an OCI image config for
// wasip2/wasm and one layer of the Wasm component media type, nothing
// containerd can unpack.
func pushRunwasi(t *testing.T, ctx context.Context, ref string, wasm []byte) {
	t.Helper()
	repo, err := remote.NewRepository(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	cfg, err := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: oci.OSWasip2, Architecture: oci.ArchWasm}, RootFS: ocispec.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	layer := ocispec.Descriptor{MediaType: oci.MediaTypeRunwasiComponentLayer, Digest: digest.FromBytes(wasm), Size: int64(len(wasm))}
	man, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		d ocispec.Descriptor
		p []byte
	}{{layer, wasm}, {cfgDesc, cfg}} {
		if ok, err := repo.Exists(ctx, b.d); err != nil {
			t.Fatal(err)
		} else if !ok {
			if err := repo.Push(ctx, b.d, bytes.NewReader(b.p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	manDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(man), Size: int64(len(man))}
	if err := repo.PushReference(ctx, manDesc, bytes.NewReader(man), repo.Reference.Reference); err != nil {
		t.Fatal(err)
	}
}

// crictlFails runs crictl and returns its error output; the command must
// fail.
func (e *env) crictlFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.crictlCmd(args...).CombinedOutput()
	if err == nil {
		t.Fatalf("crictl %s succeeded, want an error: %s", strings.Join(args, " "), out)
	}
	return string(out)
}

// TestArtifacts runs Wasm artifacts, whose one layer containerd fetches but
// does not unpack: the CNCF layout (module and component, as `wasilet push`
// makes them) through the CRI, and runwasi's layout through ctr and the
// CRI. The shim reads the layer from containerd's content store.
func TestArtifacts(t *testing.T) {
	e := start(t)
	if _, err := os.Stat(e.crictlPath); err != nil {
		t.Skipf("no crictl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cncfModule := e.c.RegistryAddr + "/shimtest/artifact:module"
	cncfComponent := e.c.RegistryAddr + "/shimtest/artifact:component"
	runwasi := e.c.RegistryAddr + "/shimtest/artifact:runwasi"
	for ref, name := range map[string]string{cncfModule: "testprog.wasm", cncfComponent: "testprog.component.wasm"} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, wasmFile(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := oci.Push(ctx, f, ref, oci.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pushRunwasi(t, ctx, runwasi, wasmFile(t, "testprog.component.wasm"))

	t.Run("ctr runwasi layout", func(t *testing.T) {
		e.pull(t, runwasi)
		r := e.run(t, time.Minute, "run", "--rm", "--runtime", shim.RuntimeType, runwasi, "art1", "app.wasm", "hello", ";", "args")
		if want := "Hello, world!\napp.wasm\nhello\n;\nargs\n"; r.code != 0 || r.stdout != want {
			t.Errorf("ctr run: exit %d, stdout %q; want 0, %q (stderr %q)", r.code, r.stdout, want, r.stderr)
		}
	})

	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pod := writePod(t, filepath.Join(dir, "pod.json"), "artifact-pod", logDir)
	podID := e.crictl(t, "runp", "--runtime", "wasilet", pod)
	defer func() {
		e.crictl(t, "stopp", podID)
		e.crictl(t, "rmp", podID)
	}()
	for i, tc := range []struct {
		name, ref string
		command   []string
		env       string
		want      string
		code      string
	}{
		// A CNCF artifact has no entrypoint: the pod's command is the
		// guest's whole argv, its first word the program's name.
		{name: "cncf module", ref: cncfModule, command: []string{"app.wasm", "env", "FROM_POD", ";", "args"}, env: "module",
			want: "FROM_POD=module\napp.wasm\nenv\nFROM_POD\n;\nargs", code: "0"},
		{name: "cncf component", ref: cncfComponent, command: []string{"app.wasm", "env", "FROM_POD", ";", "exit", "3"}, env: "component",
			want: "FROM_POD=component", code: "1"},
		{name: "runwasi layout", ref: runwasi, command: []string{"app.wasm", "hello"}, want: "Hello, world!", code: "0"},
	} {
		t.Run("cri "+tc.name, func(t *testing.T) {
			e.crictl(t, "pull", tc.ref)
			cfg := writeJSON(t, filepath.Join(dir, tc.name+".json"), map[string]any{
				"metadata": map[string]any{"name": strings.ReplaceAll(tc.name, " ", "-")},
				"image":    map[string]any{"image": tc.ref},
				"command":  tc.command,
				"envs":     []map[string]string{{"key": "FROM_POD", "value": tc.env}},
				"log_path": strings.ReplaceAll(tc.name, " ", "-") + ".log",
			})
			cid := e.crictl(t, "create", podID, cfg, pod)
			e.crictl(t, "start", cid)
			state, code, _ := strings.Cut(e.waitExited(t, cid), " ")
			code, _, _ = strings.Cut(code, " ")
			if logs := e.crictl(t, "logs", cid); state != "CONTAINER_EXITED" || code != tc.code || logs != tc.want {
				t.Errorf("container %d: %s, exit %s, logs %q; want exited %s, %q", i, state, code, logs, tc.code, tc.want)
			}
			e.crictl(t, "rm", cid)
		})
	}

	t.Run("cri plain image without its entrypoint", func(t *testing.T) {
		e.crictl(t, "pull", e.moduleNode)
		cfg := writeJSON(t, filepath.Join(dir, "missing.json"), map[string]any{
			"metadata": map[string]any{"name": "missing"},
			"image":    map[string]any{"image": e.moduleNode},
			"command":  []string{"/nope.wasm"},
			"log_path": "missing.log",
		})
		cid := e.crictl(t, "create", podID, cfg, pod)
		out := e.crictlFails(t, "start", cid)
		if want := "the entrypoint /nope.wasm is not in the image, and the image is not a Wasm artifact"; !strings.Contains(out, want) {
			t.Errorf("crictl start: %s\nwant an error containing %q", out, want)
		}
		e.crictl(t, "rm", cid)
	})
}
