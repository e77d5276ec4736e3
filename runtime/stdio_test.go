package runtime

import (
	"strings"
	"testing"
)

// TestOOMWatch: the out-of-memory messages are seen anywhere in the stream,
// also split across writes and followed by a long traceback, and nothing
// else is taken for one.
func TestOOMWatch(t *testing.T) {
	traceback := strings.Repeat("goroutine 1 [running]:\nruntime.throw(...)\n", 500)
	for _, c := range []struct {
		name   string
		writes []string
		want   bool
	}{
		{"go, then a traceback", []string{"fatal error: out of memory\n\n", traceback}, true},
		{"go, split across writes", []string{traceback, "fatal error: out of me", "mory\n", traceback}, true},
		{"rust", []string{"memory allocation of 104857600 bytes failed\n"}, true},
		{"rust, split", []string{"memory alloc", "ation of 1048576", "00 bytes fa", "iled\n"}, true},
		{"upper case", []string{"FATAL ERROR: OUT OF MEMORY"}, true},
		{"other failure", []string{"panic: runtime error: index out of range\n", traceback}, false},
		{"failed without allocation", []string{"memory check failed\n"}, false},
		{"nothing", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o oomWatch
			for _, w := range c.writes {
				if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := o.Seen(); got != c.want {
				t.Fatalf("Seen() = %v, want %v", got, c.want)
			}
		})
	}
}
