package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the Justfile through -ldflags "-X github.com/wasilet/wasilet/internal/version.version=…".
var (
	version = "v0.1.0-dev"
	commit  = "unknown"
)

const wasmtimeModule = "github.com/bytecodealliance/wasmtime-go/"

// Info describes a build.
type Info struct {
	Version  string
	Commit   string
	Go       string
	Wasmtime string
	Platform string
}

// Get returns the Info of the running binary.
func Get() Info {
	i := Info{
		Version:  version,
		Commit:   commit,
		Go:       runtime.Version(),
		Wasmtime: "unknown",
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if strings.HasPrefix(m.Path, wasmtimeModule) {
				i.Wasmtime = strings.TrimPrefix(m.Version, "v")
				if m.Replace != nil {
					i.Wasmtime = strings.TrimPrefix(m.Replace.Version, "v")
				}
			}
		}
		if i.Commit == "unknown" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					i.Commit = s.Value
				}
			}
		}
	}
	return i
}

// String is the one-line form used in node info and user agents.
func (i Info) String() string {
	return fmt.Sprintf("wasilet/%s (wasmtime %s; %s)", i.Version, i.Wasmtime, i.Go)
}
