package exchange_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasilet/wasilet/proxy/exchange"
)

// A handler answers a request; the proxy reads the answer.
func Example() {
	dir, err := os.MkdirTemp("", "wde-dir")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// The proxy writes the first request at the top level.
	in := []byte(`{"descriptions":["foo0"]}`)
	if err := exchange.WriteFileAtomic(filepath.Join(dir, exchange.InFile), in); err != nil {
		panic(err)
	}

	// The handler answers every request directory.
	dirs, err := exchange.RequestDirs(dir)
	if err != nil {
		panic(err)
	}
	for _, d := range dirs {
		out, err := exchange.MarshalOutput(exchange.Output{Devices: []exchange.Device{
			{ID: "foo0", Properties: map[string]string{"DEBUG_ECHO_DESCRIPTION": "foo0"}},
		}})
		if err != nil {
			panic(err)
		}
		if err := exchange.WriteFileAtomic(filepath.Join(d, exchange.OutFile), out); err != nil {
			panic(err)
		}
	}

	// The proxy reads the answer.
	b, err := os.ReadFile(filepath.Join(dir, exchange.OutFile))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", b)
	out, err := exchange.ParseOutput(b)
	if err != nil {
		panic(err)
	}
	for _, d := range out.Devices {
		fmt.Println(d.ID, d.Properties["DEBUG_ECHO_DESCRIPTION"])
	}
	// A second, different request would go to its own sub-directory:
	fmt.Println(exchange.RequestID([]byte(`{"descriptions":["bar0","bar1"]}`)))
	// Output:
	// {"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]}]}
	// foo0 foo0
	// req-c17fd9f7de5c
}

func ExampleParseOutput() {
	_, err := exchange.ParseOutput([]byte(`{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO`))
	fmt.Println(err)
	fmt.Println(errors.Is(err, exchange.ErrInvalidOutput))
	_, err = exchange.ParseOutput([]byte(`{"devices":[{"id":"foo0"},{"id":"foo0"}]}`))
	fmt.Println(err)
	// Output:
	// invalid discovery handler output: truncated JSON: the file ends after 50 bytes inside a value (caught half-written?)
	// true
	// invalid discovery handler output: devices[1]: duplicate id "foo0" (also devices[0])
}
