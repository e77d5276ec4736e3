package akriguest

import "time"

// Device is a discovered device (the world's device record, Akri v0 Device).
type Device struct {
	ID          string
	Properties  [][2]string
	Mounts      []Mount
	DeviceSpecs []DeviceSpec
}

// Mount is a host path mounted into the broker (v0 Mount).
type Mount struct {
	ContainerPath, HostPath string
	ReadOnly                bool
}

// DeviceSpec is a device node given to the broker (v0 DeviceSpec).
type DeviceSpec struct {
	ContainerPath, HostPath, Permissions string
}

// Property is one resolved discoveryProperty; Set is false when an optional
// reference did not resolve (v0 ByteData without vec).
type Property struct {
	Name  string
	Value []byte
	Set   bool
}

// Handler is what a component discovery handler implements.
type Handler interface {
	// Discover returns the devices found now.
	Discover(details string, props []Property) ([]Device, error)
	// Watch returns as soon as the device list differs from what the
	// previous Watch call returned (the first call returns at once), or when
	// deadline has passed, with the current list.
	Watch(details string, props []Property, deadline time.Duration) ([]Device, error)
}

// Response is an HTTP response as the http import returns it.
type Response struct {
	Status  int
	Headers [][2]string
	Body    []byte
}
