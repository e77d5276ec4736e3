package pods

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// A pull that failed to dial the registry is woken when the registry
// listens again; any other failure waits out its back-off.
func TestRegistryBack(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ch := registryBack(ctx, "127.0.0.1:1/x:v1", errors.New("manifest unknown")); ch != nil {
		t.Fatal("a non-network error is watched")
	}
	// A free port: listen, note it, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, dialErr := net.Dial("tcp", addr)
	if dialErr == nil {
		t.Fatal("nothing should listen on the closed port")
	}
	wake := registryBack(ctx, addr+"/repo:v1", fmt.Errorf("pull: %w", dialErr))
	if wake == nil {
		t.Fatalf("a dial error (%v) is not watched", dialErr)
	}
	select {
	case <-wake:
		t.Fatal("woken while the registry is down")
	case <-time.After(1500 * time.Millisecond):
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer l.Close()
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken after the registry came back")
	}
}
