package wasmtimec

import "testing"

func TestSummarize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"error while executing at wasm backtrace:\n    0:     0x2c - m!boom\n    1:     0x30 - m!<wasm function 1>\n\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n\nStack backtrace:\n   0: <unknown>\n   1: <unknown>",
			"wasm trap: wasm `unreachable` instruction executed"},
		{"component imports instance `x:y/z@0.1.0`, but a matching implementation was not found in the linker\n\nCaused by:\n    0: instance export `ping` has the wrong type\n    1: function implementation is missing\n\nStack backtrace:\n   0: <unknown>",
			"component imports instance `x:y/z@0.1.0`, but a matching implementation was not found in the linker: instance export `ping` has the wrong type: function implementation is missing"},
		{"memory minimum size of 1024 pages exceeds memory limits\n\nStack backtrace:\n   0: <unknown>", "memory minimum size of 1024 pages exceeds memory limits"},
		{"plain", "plain"},
	} {
		if got := summarize(c.in); got != c.want {
			t.Errorf("summarize(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	if got, want := cleanMessage("a\n\nCaused by:\n    b\n\nStack backtrace:\n  0: x"), "a\n\nCaused by:\n    b"; got != want {
		t.Errorf("cleanMessage: got %q, want %q", got, want)
	}
}
