package proxy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wasilet/wasilet/handlers/debugecho"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

// FuzzInput: Input never panics; it refuses with an InvalidArgument status
// that says what is wrong, or returns one JSON object, which is again an
// accepted discoveryDetails giving the same bytes. And for debugEcho, the
// handler reading in.in sees the descriptions the proxy validated: the
// native handler (ParseDetails of the details) and the Wasm one
// (ParseDetails of in.in) discover the same devices.
func FuzzInput(f *testing.F) {
	for _, s := range []string{
		"descriptions: [foo0, foo1]",
		"descriptions:\n  - \"foo1\"\n",
		`{"descriptions":["foo0"]}`,
		"descriptions: [1, true, foo]",
		"",
		"# only a comment\n",
		"[a, b]",
		"descriptions: [",
		"a: &x [1]\nb: *x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, details string) {
		native, nerr := debugecho.ParseDetails(details)
		in, err := Input(&v0.DiscoverRequest{DiscoveryDetails: details})
		if err != nil {
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.InvalidArgument || st.Message() == "" {
				t.Fatalf("Input(%q): error %v, want an InvalidArgument status with a message", details, err)
			}
			if nerr == nil {
				t.Fatalf("debugEcho details %q: valid for the native handler (%q), refused by Input: %v", details, native.Descriptions, err)
			}
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(in, &obj); err != nil || obj == nil || !bytes.HasPrefix(in, []byte("{")) {
			t.Fatalf("Input(%q) = %s, not a JSON object (%v)", details, in, err)
		}
		again, err := Input(&v0.DiscoverRequest{DiscoveryDetails: string(in)})
		if err != nil || !bytes.Equal(again, in) {
			t.Fatalf("Input(%q) = %s; Input of that = %s, %v", details, in, again, err)
		}

		if nerr != nil {
			return // the proxy's Validate refuses these before Input
		}
		wasm, err := debugecho.ParseDetails(string(in))
		if err != nil || !reflect.DeepEqual(wasm, native) {
			t.Fatalf("debugEcho details %q: the native handler reads %q, the Wasm handler reads in.in %s as %q (%v)", details, native.Descriptions, in, wasm.Descriptions, err)
		}
	})
}
