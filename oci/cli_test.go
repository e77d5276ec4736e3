package oci_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wasilet/wasilet/oci"
)

// wasiletBin returns $WASILET_BIN (the built wasilet binary); without it the
// test fails, or skips under -short.
func wasiletBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test of the wasilet binary")
	}
	bin := os.Getenv("WASILET_BIN")
	if bin == "" {
		t.Fatal("WASILET_BIN is not set: it must name the wasilet binary (go build -o bin/wasilet ./cmd/wasilet)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("WASILET_BIN=%s: %v", bin, err)
	}
	return bin
}

// wasilet runs the binary with env added and returns stdout, stderr and the
// exit code.
func wasilet(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(wasiletBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run wasilet %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// TestCLIPushOrasPull: `wasilet push` writes what the real oras CLI pulls.
func TestCLIPushOrasPull(t *testing.T) {
	wasiletBin(t)
	reg := startRegistry(t, registryOptions{})
	dir := t.TempDir()
	wasm := wasmComponent("cli-push")
	writeFile(t, dir, "comp.wasm", wasm)
	ref := reg + "/cli/push:v1"
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	stdout, stderr, code := wasilet(t, env, "push", filepath.Join(dir, "comp.wasm"), ref,
		"--tag", "extra", "--tag", "more", "--annotation", "org.example.k=v", "--source", "https://source.test/x")
	if code != 0 {
		t.Fatalf("wasilet push exit %d\nstderr:\n%s", code, stderr)
	}
	dgst := strings.TrimSpace(stdout)
	if !strings.HasPrefix(dgst, "sha256:") || strings.Contains(dgst, "\n") {
		t.Fatalf("wasilet push printed %q, want the digest alone", stdout)
	}
	if !strings.Contains(stderr, "push ") || !strings.Contains(stderr, "component") {
		t.Errorf("push progress/summary on stderr:\n%s", stderr)
	}
	for _, tag := range []string{"v1", "extra", "more"} {
		r := reg + "/cli/push:" + tag
		if got := strings.TrimSpace(oras(t, dir, "resolve", "--plain-http", r)); got != dgst {
			t.Errorf("oras resolve %s = %s, want %s", r, got, dgst)
		}
		out := filepath.Join(t.TempDir(), "out")
		oras(t, dir, "pull", "--plain-http", "-o", out, r)
		got, err := os.ReadFile(filepath.Join(out, "comp.wasm"))
		if err != nil || !bytes.Equal(got, wasm) {
			t.Errorf("oras pull %s: %v (bytes equal: %t)", r, err, bytes.Equal(got, wasm))
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(oras(t, dir, "manifest", "fetch", "--plain-http", ref)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.example.k"] != "v" || m.Annotations[ocispec.AnnotationSource] != "https://source.test/x" ||
		m.Annotations[ocispec.AnnotationCreated] == "" || m.Config.MediaType != oci.MediaTypeWasmConfig {
		t.Errorf("manifest: %+v", m)
	}
	var cfg oci.WasmConfig
	if err := json.Unmarshal([]byte(oras(t, dir, "manifest", "fetch-config", "--plain-http", ref)), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "wasip2" || cfg.Architecture != "wasm" {
		t.Errorf("config of a pushed component: %+v", cfg)
	}

	// Bad input: not wasm, bad annotation.
	writeFile(t, dir, "script.sh", []byte("#!/bin/sh\n"))
	if _, stderr, code := wasilet(t, env, "push", filepath.Join(dir, "script.sh"), ref); code == 0 || !strings.Contains(stderr, "not a wasm binary") {
		t.Errorf("push of a non-wasm file: exit %d, stderr %s", code, stderr)
	}
	if _, stderr, code := wasilet(t, env, "push", filepath.Join(dir, "comp.wasm"), ref, "--annotation", "novalue"); code == 0 || !strings.Contains(stderr, "KEY=VALUE") {
		t.Errorf("push with a bad annotation: exit %d, stderr %s", code, stderr)
	}
}

// TestCLIPull: `wasilet pull` fetches what `oras push` pushed, prints digest,
// media types and file, writes -o, and fails clearly on the rest.
func TestCLIPull(t *testing.T) {
	wasiletBin(t)
	reg := startRegistry(t, registryOptions{})
	dir := t.TempDir()
	wasm := wasmModule("cli-pull")
	writeFile(t, dir, "mod.wasm", wasm)
	writeFile(t, dir, "cfg.json", []byte(`{}`))
	pushed := orasPushJSON(t, dir, "--config", "cfg.json:"+oci.MediaTypeWasmToOCIConfig,
		reg+"/cli/pull:v1", "mod.wasm:"+oci.MediaTypeWasmToOCILayer)
	store := filepath.Join(t.TempDir(), "store")
	out := filepath.Join(t.TempDir(), "got.wasm")
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	stdout, stderr, code := wasilet(t, env, "pull", reg+"/cli/pull:v1", "--store", store, "-o", out)
	if code != 0 {
		t.Fatalf("wasilet pull exit %d\nstderr:\n%s", code, stderr)
	}
	for _, want := range []string{"Digest:", pushed.Digest, oci.MediaTypeWasmToOCIConfig, oci.MediaTypeWasmToOCILayer,
		"wasm-to-oci", "module", "File:", out, filepath.Join(store, "blobs", "sha256")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("pull output lacks %q:\n%s", want, stdout)
		}
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, wasm) {
		t.Errorf("-o file: %v (bytes equal %t)", err, bytes.Equal(got, wasm))
	}
	// -q prints the digest alone; a second pull is served from the store.
	stdout, stderr, code = wasilet(t, env, "pull", "-q", "--policy", "Never", reg+"/cli/pull:v1", "--store", store)
	if code != 0 || strings.TrimSpace(stdout) != pushed.Digest {
		t.Errorf("pull -q --policy Never: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}

	// An OCI container image is refused, naming what was found and accepted.
	writeFile(t, dir, "layer.tgz", []byte("\x1f\x8b..."))
	writeFile(t, dir, "image.json", []byte(`{"architecture":"amd64","os":"linux"}`))
	orasPushJSON(t, dir, "--config", "image.json:"+ocispec.MediaTypeImageConfig, reg+"/cli/container:v1", "layer.tgz:"+ocispec.MediaTypeImageLayerGzip)
	_, stderr, code = wasilet(t, env, "pull", reg+"/cli/container:v1", "--store", store)
	if code == 0 || !strings.Contains(stderr, ocispec.MediaTypeImageLayerGzip) || !strings.Contains(stderr, oci.MediaTypeWasmLayer) {
		t.Errorf("pull of a container image: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCLIAuth: the CLI reads credentials from the docker config file.
func TestCLIAuth(t *testing.T) {
	wasiletBin(t)
	reg := startRegistry(t, registryOptions{User: "cli", Password: "pw"})
	dir := t.TempDir()
	writeFile(t, dir, "a.wasm", wasmModule("cli-auth"))
	creds := t.TempDir()
	writeFile(t, creds, "config.json", []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`,
		reg, base64.StdEncoding.EncodeToString([]byte("cli:pw")))))
	ref := reg + "/auth/app:v1"
	if _, stderr, code := wasilet(t, []string{"DOCKER_CONFIG=" + creds}, "push", filepath.Join(dir, "a.wasm"), ref); code != 0 {
		t.Fatalf("push with docker config: exit %d\n%s", code, stderr)
	}
	store := t.TempDir()
	if _, stderr, code := wasilet(t, []string{"DOCKER_CONFIG=" + creds}, "pull", ref, "--store", store); code != 0 {
		t.Fatalf("pull with docker config: exit %d\n%s", code, stderr)
	}
	_, stderr, code := wasilet(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "pull", ref, "--store", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "requires authentication") {
		t.Errorf("pull without credentials: exit %d, stderr:\n%s", code, stderr)
	}
}
