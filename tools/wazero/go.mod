// Wrapper module for wazero-run, the wazero baseline of the module start
// benchmark (hack/tools.sh builds it into the baseline tools directory). It is
// a module of its own so that wazero never enters wasilet's go.mod.
module github.com/wasilet/wasilet/tools/wazero

go 1.26

require github.com/tetratelabs/wazero v1.12.0

require golang.org/x/sys v0.44.0 // indirect
