//go:build !wasip1

package akriguest

import (
	"strings"
	"testing"
	"time"
)

type fakeHandler struct{ watched time.Duration }

func (h *fakeHandler) Discover(details string, props []Property) ([]Device, error) {
	return []Device{{ID: details, Properties: [][2]string{{"N", string(props[0].Value)}}}}, nil
}

func (h *fakeHandler) Watch(details string, props []Property, deadline time.Duration) ([]Device, error) {
	h.watched = deadline
	return h.Discover(details, props)
}

// Outside Wasm, Serve records the handler (so a handler's init can run in
// its native tests) and HTTPGet fails without sending anything.
func TestNative(t *testing.T) {
	h := &fakeHandler{}
	Serve(h)
	t.Cleanup(func() { handler = nil })
	if handler != h {
		t.Fatal("Serve did not record the handler")
	}
	devs, err := handler.Watch("d", []Property{{Name: "n", Value: []byte("v"), Set: true}}, time.Second)
	if err != nil || len(devs) != 1 || devs[0].ID != "d" || devs[0].Properties[0] != [2]string{"N", "v"} || h.watched != time.Second {
		t.Fatalf("watch through the recorded handler: %+v, %v", devs, err)
	}
	r, err := HTTPGet("http://127.0.0.1:1/")
	if err == nil || !strings.Contains(err.Error(), "akri:discovery/http") {
		t.Fatalf("HTTPGet outside Wasm: got %+v, %v", r, err)
	}
}
