package pods

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasilet/wasilet/runtime"
)

func TestHostPathTypes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o644)
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ok := []struct {
		path string
		typ  corev1.HostPathType
	}{
		{dir, corev1.HostPathDirectory},
		{filepath.Join(dir, "new/sub"), corev1.HostPathDirectoryOrCreate},
		{file, corev1.HostPathFile},
		{filepath.Join(dir, "newfile"), corev1.HostPathFileOrCreate},
		{sock, corev1.HostPathSocket},
		{filepath.Join(dir, "unset"), corev1.HostPathUnset},
	}
	for _, c := range ok {
		if _, err := checkHostPath(&corev1.HostPathVolumeSource{Path: c.path, Type: ptr(c.typ)}); err != nil {
			t.Errorf("%s %s: %v", c.typ, c.path, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "newfile")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("FileOrCreate did not create a file: %v", err)
	}
	bad := []struct {
		path string
		typ  corev1.HostPathType
		msg  string
	}{
		{filepath.Join(dir, "missing"), corev1.HostPathDirectory, "is not a directory"},
		{file, corev1.HostPathDirectory, "is not a directory"},
		{dir, corev1.HostPathFile, "is not a file"},
		{file, corev1.HostPathSocket, "is not a socket file"},
		{file, corev1.HostPathCharDev, "is not a character device"},
		{file, corev1.HostPathBlockDev, "is not a block device"},
		{file, corev1.HostPathDirectoryOrCreate, "is not a directory"},
		{filepath.Join(dir, "nodir/x"), corev1.HostPathFileOrCreate, "parent directory"},
		{"relative", corev1.HostPathUnset, "not absolute"},
	}
	for _, c := range bad {
		_, err := checkHostPath(&corev1.HostPathVolumeSource{Path: c.path, Type: ptr(c.typ)})
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %s: got %v, want %q", c.typ, c.path, err, c.msg)
		}
	}
}

func TestSetupVolumes(t *testing.T) {
	get := testGetter(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"a.txt": "A", "b.txt": "B"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"token": []byte("T")}},
	)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Labels: map[string]string{"k": "v"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "empty", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cm"},
				Items:                []corev1.KeyToPath{{Key: "a.txt", Path: "sub/renamed.txt"}},
				DefaultMode:          ptr(int32(0o600)),
			}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
			{Name: "opt", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: ptr(true)}}},
			{Name: "down", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			}}}},
			{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "b.txt", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}},
		}},
	}
	dir := t.TempDir()
	deps := volumeDeps{get: get, token: func(ctx context.Context, pod *corev1.Pod, aud string, exp int64) (string, error) {
		return "tok-" + pod.Name, nil
	}}
	vols, err := setupVolumes(context.Background(), pod, dir, deps)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(filepath.Join(vols["cm"].Path, "sub/renamed.txt")); got != "A" {
		t.Errorf("configMap item: %q", got)
	}
	if _, err := os.Stat(filepath.Join(vols["cm"].Path, "b.txt")); !os.IsNotExist(err) {
		t.Errorf("configMap items should project only listed keys")
	}
	if fi, _ := os.Stat(filepath.Join(vols["cm"].Path, "sub/renamed.txt")); fi.Mode().Perm() != 0o600 {
		t.Errorf("defaultMode: %v", fi.Mode())
	}
	if got := read(filepath.Join(vols["sec"].Path, "token")); got != "T" {
		t.Errorf("secret: %q", got)
	}
	if got := read(filepath.Join(vols["down"].Path, "labels")); got != `k="v"` {
		t.Errorf("downward labels: %q", got)
	}
	if got := read(filepath.Join(vols["proj"].Path, "token")); got != "tok-p" {
		t.Errorf("projected token: %q", got)
	}
	if got := read(filepath.Join(vols["proj"].Path, "namespace")); got != "ns" {
		t.Errorf("projected namespace: %q", got)
	}
	if !vols["cm"].ReadOnly || vols["empty"].ReadOnly {
		t.Errorf("read-only flags: %+v", vols)
	}

	// A missing non-optional ConfigMap is a mount error naming the volume.
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "gone", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}}}})
	_, err = setupVolumes(context.Background(), pod, dir, deps)
	var me *mountError
	if !errors.As(err, &me) || me.Volume != "gone" || !strings.Contains(err.Error(), `configmap "missing" not found`) {
		t.Fatalf("missing configmap: %v", err)
	}
	// Unsupported types and path escapes are refused.
	for _, v := range []corev1.Volume{
		{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}}},
		{Name: "esc", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "a.txt", Path: "../x"}}}}},
	} {
		pod.Spec.Volumes = []corev1.Volume{v}
		if _, err := setupVolumes(context.Background(), pod, dir, deps); err == nil {
			t.Errorf("volume %s: no error", v.Name)
		}
	}
}

func TestContainerMounts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	cmDir := filepath.Join(dir, "cm")
	os.MkdirAll(cmDir, 0o755)
	os.WriteFile(filepath.Join(cmDir, "app.conf"), []byte("conf"), 0o644)
	vols := map[string]volume{"data": {Path: data}, "cm": {Path: cmDir, ReadOnly: true}}
	c := &corev1.Container{
		Name: "c",
		VolumeMounts: []corev1.VolumeMount{
			{Name: "data", MountPath: "/data"},
			{Name: "data", MountPath: "/ro", ReadOnly: true},
			{Name: "data", MountPath: "/sub", SubPathExpr: "$(POD)"},
			{Name: "cm", MountPath: "/etc/app/app.conf", SubPath: "app.conf"},
			{Name: "cm", MountPath: "/etc/other/renamed.conf", SubPath: "app.conf"},
		},
	}
	runDir := filepath.Join(dir, "run")
	mounts, term, err := containerMounts(c, vols, map[string]string{"POD": "p1"}, runDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]runtime.Mount{
		"/data":      {HostPath: data, GuestPath: "/data"},
		"/ro":        {HostPath: data, GuestPath: "/ro", ReadOnly: true},
		"/sub":       {HostPath: filepath.Join(data, "p1"), GuestPath: "/sub"},
		"/etc/app":   {HostPath: cmDir, GuestPath: "/etc/app", ReadOnly: true},
		"/etc/other": {HostPath: filepath.Join(runDir, "files", "1"), GuestPath: "/etc/other", ReadOnly: true},
		"/dev":       {HostPath: filepath.Join(runDir, "termination"), GuestPath: "/dev"},
	}
	if len(mounts) != len(want) {
		t.Fatalf("mounts: %+v", mounts)
	}
	for _, m := range mounts {
		if want[m.GuestPath] != m {
			t.Errorf("mount %s: got %+v, want %+v", m.GuestPath, m, want[m.GuestPath])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(runDir, "files", "1", "renamed.conf")); string(b) != "conf" {
		t.Errorf("copied file: %q", b)
	}
	if term != filepath.Join(runDir, "termination", "termination-log") {
		t.Errorf("termination log %s", term)
	}
	if fi, err := os.Stat(filepath.Join(data, "p1")); err != nil || !fi.IsDir() {
		t.Errorf("subPath directory not created: %v", err)
	}
	// subPath escapes are refused.
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "../.."}}
	if _, _, err := containerMounts(c, vols, nil, runDir, nil); err == nil {
		t.Error("subPath .. accepted")
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}
	if _, _, err := containerMounts(c, vols, nil, runDir, nil); err == nil {
		t.Error("unknown volume accepted")
	}
}
