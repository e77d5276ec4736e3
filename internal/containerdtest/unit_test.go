package containerdtest

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/ctd-1/root`:       "/tmp/ctd-1/root",
		`/tmp/a\040b`:           "/tmp/a b",
		`/tmp/tab\011x\134y`:    "/tmp/tab\tx\\y",
		`/tmp/short\04`:         `/tmp/short\04`,
		`/tmp/not-octal\999end`: `/tmp/not-octal\999end`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	p, err := readProc(os.Getpid(), true)
	if err != nil {
		t.Fatal(err)
	}
	if p.ppid != os.Getppid() {
		t.Errorf("ppid %d, want %d", p.ppid, os.Getppid())
	}
	if p.rss <= 0 || p.threads <= 0 {
		t.Errorf("rss %d, threads %d: want both positive", p.rss, p.threads)
	}
	if _, err := readProc(-1, false); err == nil {
		t.Error("readProc(-1) succeeded")
	}
}

func TestLayerDigests(t *testing.T) {
	im := image{file: "hello", bin: []byte("#!binary"), entrypoint: []string{"/hello"}}
	gz1, diff1, err := im.layer()
	if err != nil {
		t.Fatal(err)
	}
	gz2, diff2, err := im.layer()
	if err != nil {
		t.Fatal(err)
	}
	if string(gz1) != string(gz2) || diff1 != diff2 {
		t.Error("the same image gave two different layers: its digest would change from run to run")
	}
	im.nonce = []byte("another image")
	_, diff3, err := im.layer()
	if err != nil {
		t.Fatal(err)
	}
	if diff3 == diff1 {
		t.Error("a nonce did not change the layer: cold images would share it")
	}
}

func TestTryStartSaysWhyUnavailable(t *testing.T) {
	c, err := TryStart(t, Options{ToolsDir: t.TempDir()})
	var u *UnavailableError
	if c != nil || !errors.As(err, &u) {
		t.Fatalf("TryStart with an empty tools directory = %v, %v; want an *UnavailableError", c, err)
	}
	if !strings.HasPrefix(err.Error(), "containerd baseline unavailable: ") || u.Reason == "" {
		t.Errorf("error %q: want the reason after %q", err, "containerd baseline unavailable: ")
	}
}
