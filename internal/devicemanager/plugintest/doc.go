// Package plugintest is a real deviceplugin v1beta1 plugin for tests: a
// gRPC server on a unix socket in the device-plugin directory that
// registers itself, streams a device list it can change, records the
// GetPreferredAllocation, Allocate and PreStartContainer calls it gets and,
// like the upstream sample device plugin, re-registers when kubelet.sock is
// created again. SampleCommand and StartSample run the upstream
// sample-device-plugin binary against a test directory.
package plugintest
