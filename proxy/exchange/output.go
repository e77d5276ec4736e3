package exchange

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Output is the content of OutFile: the full list of devices a handler
// discovered for one request.
type Output struct {
	// Devices are the discovered devices, in the handler's order; ids are
	// unique.
	Devices []Device `json:"devices"`
}

// Device is a discovered device, Akri's Device message (discovery.proto v0).
type Device struct {
	// ID identifies the device; Akri names its Instance after it. Not empty.
	ID string `json:"id"`
	// Properties become the Instance's brokerProperties and the environment
	// of the pods using the device.
	Properties map[string]string `json:"properties"`
	// Mounts are host directories to mount into the pods using the device.
	Mounts []Mount `json:"mounts"`
	// DeviceSpecs are host devices to give the pods using the device.
	DeviceSpecs []DeviceSpec `json:"device_specs"`
}

// Mount is a host directory to mount into a container.
type Mount struct {
	ContainerPath string `json:"container_path"`
	HostPath      string `json:"host_path"`
	ReadOnly      bool   `json:"read_only"`
}

// DeviceSpec is a host device to give a container.
type DeviceSpec struct {
	ContainerPath string `json:"container_path"`
	HostPath      string `json:"host_path"`
	// Permissions are cgroup device permissions: some of "r", "w" and "m".
	Permissions string `json:"permissions"`
}

// ErrInvalidOutput is wrapped by every error of ParseOutput and of
// MarshalOutput's validation. It has the InvalidParameter marker method of
// the errdefs invalid-argument class, so errdefs.IsInvalidArgument reports it
// (this package imports the standard library only).
var ErrInvalidOutput error = invalidOutput{}

type invalidOutput struct{}

func (invalidOutput) Error() string     { return "invalid discovery handler output" }
func (invalidOutput) InvalidParameter() {}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOutput}, args...)...)
}

// MarshalOutput returns the OutFile content of out: compact JSON in the
// original handler's field order, with empty (never null) devices, properties,
// mounts and device_specs, and without HTML escaping, e.g.
//
//	{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]}]}
//
// Property names are sorted. It refuses (wrapping ErrInvalidOutput) what
// ParseOutput would refuse: an empty or duplicate id, a mount without paths
// or a device spec without paths.
func MarshalOutput(out Output) ([]byte, error) {
	norm := Output{Devices: make([]Device, 0, len(out.Devices))}
	seen := make(map[string]bool, len(out.Devices))
	for i, d := range out.Devices {
		if d.ID == "" {
			return nil, invalidf("devices[%d]: empty id", i)
		}
		if seen[d.ID] {
			return nil, invalidf("devices[%d]: duplicate id %q", i, d.ID)
		}
		seen[d.ID] = true
		for j, m := range d.Mounts {
			if m.ContainerPath == "" || m.HostPath == "" {
				return nil, invalidf("devices[%d] (id %q): mounts[%d]: container_path and host_path are required", i, d.ID, j)
			}
		}
		for j, s := range d.DeviceSpecs {
			if s.ContainerPath == "" || s.HostPath == "" {
				return nil, invalidf("devices[%d] (id %q): device_specs[%d]: container_path and host_path are required", i, d.ID, j)
			}
		}
		if d.Properties == nil {
			d.Properties = map[string]string{}
		}
		if d.Mounts == nil {
			d.Mounts = []Mount{}
		}
		if d.DeviceSpecs == nil {
			d.DeviceSpecs = []DeviceSpec{}
		}
		norm.Devices = append(norm.Devices, d)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(norm); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseOutput parses the content of OutFile. It accepts what the original
// demo handler wrote, byte for byte, and anything MarshalOutput writes:
//
//   - ids and property values that are JSON strings are taken as the strings
//     they are ("foo0" is foo0, not "\"foo0\"" as the original proxy had it);
//     property values that are numbers or booleans are taken as their JSON
//     text (1.50 is "1.50", true is "true");
//   - "properties", "mounts" and "device_specs" may be absent or null
//     (meaning none); "read_only" and "permissions" may be absent;
//   - unknown fields, at any level, are ignored.
//
// Everything else is an error wrapping ErrInvalidOutput that names the
// problem and where it is: empty or blank data, truncated JSON (a file caught
// half-written), malformed JSON, anything after the top-level object, a top
// level that is not an object, a missing or null "devices" or one that is not
// an array, a device that is not an object, an id that is missing, not a
// string or empty, a duplicate id, properties that are not an object or hold
// a null, object or array value, and mounts or device specs of the wrong
// shape or without container_path and host_path.
//
// The returned Output owns its memory. A device without properties has an
// empty (non-nil) Properties map; without mounts or device specs, nil slices.
func ParseOutput(data []byte) (Output, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Output{}, invalidf("empty file (not written yet, or caught half-written)")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return Output{}, jsonError(err, len(data))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Output{}, invalidf("unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	obj, err := object(top, "top level")
	if err != nil {
		return Output{}, err
	}
	rawDevices, ok := obj["devices"]
	if !ok {
		return Output{}, invalidf(`missing "devices"`)
	}
	var items []json.RawMessage
	if k := kind(rawDevices); k != "array" {
		return Output{}, invalidf(`"devices" is %s, want an array`, article(k))
	}
	if err := json.Unmarshal(rawDevices, &items); err != nil {
		return Output{}, invalidf(`"devices": %v`, err)
	}
	out := Output{Devices: make([]Device, 0, len(items))}
	seen := make(map[string]int, len(items))
	for i, item := range items {
		d, err := parseDevice(item, fmt.Sprintf("devices[%d]", i))
		if err != nil {
			return Output{}, err
		}
		if j, dup := seen[d.ID]; dup {
			return Output{}, invalidf("devices[%d]: duplicate id %q (also devices[%d])", i, d.ID, j)
		}
		seen[d.ID] = i
		out.Devices = append(out.Devices, d)
	}
	return out, nil
}

func parseDevice(raw json.RawMessage, where string) (Device, error) {
	obj, err := object(raw, where)
	if err != nil {
		return Device{}, err
	}
	rawID, ok := obj["id"]
	if !ok {
		return Device{}, invalidf("%s: missing id", where)
	}
	if k := kind(rawID); k != "string" {
		return Device{}, invalidf("%s: id is %s, want a string", where, describe(rawID))
	}
	var d Device
	if err := json.Unmarshal(rawID, &d.ID); err != nil {
		return Device{}, invalidf("%s: id: %v", where, err)
	}
	if d.ID == "" {
		return Device{}, invalidf("%s: empty id", where)
	}
	where = fmt.Sprintf("%s (id %q)", where, d.ID)

	d.Properties = map[string]string{}
	if raw, ok := obj["properties"]; ok && kind(raw) != "null" {
		props, err := object(raw, where+": properties")
		if err != nil {
			return Device{}, err
		}
		for name, v := range props {
			switch k := kind(v); k {
			case "string":
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					return Device{}, invalidf("%s: property %q: %v", where, name, err)
				}
				d.Properties[name] = s
			case "number", "boolean":
				var c bytes.Buffer
				if err := json.Compact(&c, v); err != nil {
					return Device{}, invalidf("%s: property %q: %v", where, name, err)
				}
				d.Properties[name] = c.String()
			default:
				return Device{}, invalidf("%s: property %q is %s, want a string", where, name, article(k))
			}
		}
	}

	if raw, ok := obj["mounts"]; ok && kind(raw) != "null" {
		items, err := array(raw, where+": mounts")
		if err != nil {
			return Device{}, err
		}
		for j, item := range items {
			at := fmt.Sprintf("%s: mounts[%d]", where, j)
			m, err := object(item, at)
			if err != nil {
				return Device{}, err
			}
			var mount Mount
			if mount.ContainerPath, err = requiredString(m, "container_path", at); err != nil {
				return Device{}, err
			}
			if mount.HostPath, err = requiredString(m, "host_path", at); err != nil {
				return Device{}, err
			}
			if v, ok := m["read_only"]; ok && kind(v) != "null" {
				if kind(v) != "boolean" {
					return Device{}, invalidf("%s: read_only is %s, want a boolean", at, article(kind(v)))
				}
				mount.ReadOnly = bytes.Equal(v, []byte("true"))
			}
			d.Mounts = append(d.Mounts, mount)
		}
	}

	if raw, ok := obj["device_specs"]; ok && kind(raw) != "null" {
		items, err := array(raw, where+": device_specs")
		if err != nil {
			return Device{}, err
		}
		for j, item := range items {
			at := fmt.Sprintf("%s: device_specs[%d]", where, j)
			s, err := object(item, at)
			if err != nil {
				return Device{}, err
			}
			var spec DeviceSpec
			if spec.ContainerPath, err = requiredString(s, "container_path", at); err != nil {
				return Device{}, err
			}
			if spec.HostPath, err = requiredString(s, "host_path", at); err != nil {
				return Device{}, err
			}
			if v, ok := s["permissions"]; ok && kind(v) != "null" {
				if kind(v) != "string" {
					return Device{}, invalidf("%s: permissions is %s, want a string", at, article(kind(v)))
				}
				if err := json.Unmarshal(v, &spec.Permissions); err != nil {
					return Device{}, invalidf("%s: permissions: %v", at, err)
				}
			}
			d.DeviceSpecs = append(d.DeviceSpecs, spec)
		}
	}
	return d, nil
}

// requiredString returns the non-empty string field name of obj.
func requiredString(obj map[string]json.RawMessage, name, where string) (string, error) {
	raw, ok := obj[name]
	if !ok {
		return "", invalidf("%s: missing %s", where, name)
	}
	if k := kind(raw); k != "string" {
		return "", invalidf("%s: %s is %s, want a string", where, name, article(k))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidf("%s: %s: %v", where, name, err)
	}
	if s == "" {
		return "", invalidf("%s: empty %s", where, name)
	}
	return s, nil
}

func object(raw json.RawMessage, where string) (map[string]json.RawMessage, error) {
	if k := kind(raw); k != "object" {
		return nil, invalidf("%s is %s, want an object", where, article(k))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalidf("%s: %v", where, err)
	}
	return m, nil
}

func array(raw json.RawMessage, where string) ([]json.RawMessage, error) {
	if k := kind(raw); k != "array" {
		return nil, invalidf("%s is %s, want an array", where, article(k))
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, invalidf("%s: %v", where, err)
	}
	return a, nil
}

// kind names the JSON type of a valid JSON value.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func article(kind string) string {
	switch kind {
	case "null", "nothing":
		return kind
	case "object", "array":
		return "an " + kind
	}
	return "a " + kind
}

// describe names the JSON type of raw with an article, and shows the value
// of a number or boolean: "a number (3)", "an object".
func describe(raw json.RawMessage) string {
	switch k := kind(raw); k {
	case "number", "boolean":
		return fmt.Sprintf("%s (%s)", article(k), bytes.TrimSpace(raw))
	default:
		return article(k)
	}
}

// jsonError describes a decoding error of a file of size bytes.
func jsonError(err error, size int) error {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("truncated JSON: the file ends after %d bytes inside a value (caught half-written?)", size)
	case errors.As(err, &syntax):
		return invalidf("malformed JSON at byte %s: %v", strconv.FormatInt(syntax.Offset, 10), err)
	}
	return invalidf("%v", err)
}
