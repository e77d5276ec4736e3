// Package demotest runs the README's first command, the reference scenario
// of hack/demo.sh, as a test, so that it cannot rot: twice on a fresh local
// cluster (the second run reuses everything and must end the same way), then
// `--down`.
package demotest
