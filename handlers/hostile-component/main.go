// Command hostile-component is a test discovery handler component that
// misbehaves on request, for the agent's containment tests. Its
// discoveryDetails name the behaviour:
//
//	trap        a Wasm trap (unreachable, through a nil dereference)
//	panic       a Go panic (the guest exits)
//	loop        an endless loop (the call's time limit stops it)
//	alloc       allocates until the memory limit refuses it
//	many N      returns N devices
//	file PATH   reads PATH (outside the preopens: refused) and reports it
//	http URL    sends a GET to URL (a host not granted: refused)
//	ok          one device "ok"
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wasilet/wasilet/handlers/internal/akriguest"
)

type handler struct{ calls int }

var sink [][]byte

func behave(details string) ([]akriguest.Device, error) {
	verb, arg, _ := strings.Cut(strings.TrimSpace(details), " ")
	switch verb {
	case "trap":
		var p *[1 << 20]byte
		p[1<<19] = 1 // traps: Go's wasm port checks nil with a trap
		return nil, nil
	case "panic":
		panic("hostile: asked to panic")
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				return nil, nil
			}
		}
	case "alloc":
		for {
			sink = append(sink, make([]byte, 16<<20))
		}
	case "many":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return nil, err
		}
		devs := make([]akriguest.Device, n)
		for i := range devs {
			id := fmt.Sprintf("dev%05d", i)
			devs[i] = akriguest.Device{ID: id, Properties: [][2]string{{"HOSTILE_ID", id}}}
		}
		return devs, nil
	case "file":
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", arg, err)
		}
		return []akriguest.Device{{ID: "file", Properties: [][2]string{{"CONTENT", string(b)}}}}, nil
	case "http":
		r, err := akriguest.HTTPGet(arg)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", arg, err)
		}
		return []akriguest.Device{{ID: "http", Properties: [][2]string{{"STATUS", strconv.Itoa(r.Status)}}}}, nil
	case "ok":
		return []akriguest.Device{{ID: "ok"}}, nil
	}
	return nil, fmt.Errorf("unknown behaviour %q", verb)
}

func (h *handler) Discover(details string, _ []akriguest.Property) ([]akriguest.Device, error) {
	return behave(details)
}

func (h *handler) Watch(details string, _ []akriguest.Property, deadline time.Duration) ([]akriguest.Device, error) {
	h.calls++
	if h.calls > 1 {
		time.Sleep(deadline)
	}
	return behave(details)
}

func init() { akriguest.Serve(&handler{}) }

func main() {}
