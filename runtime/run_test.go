package runtime_test

import (
	"testing"

	"github.com/wasilet/wasilet/runtime"
)

func TestHello(t *testing.T) {
	out := run(t, "hello")
	if out.res != (runtime.Result{ExitCode: 0, Reason: runtime.ReasonCompleted}) || out.stdout != "Hello, world!\n" {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	for _, code := range []int{0, 1, 42, 125, 126, 200, 255} {
		out := run(t, "exit", itoa(code))
		want := runtime.ReasonError
		if code == 0 {
			want = runtime.ReasonCompleted
		}
		if out.res.ExitCode != code || out.res.Reason != want {
			t.Errorf("exit %d: got %+v (stderr %q)", code, out.res, out.stderr)
		}
	}
}
