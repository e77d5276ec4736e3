package debugecho

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

const (
	// Name is the name debugEcho registers with the agent.
	Name = "debugEcho"
	// DescriptionProperty is the device property (and so the broker's
	// environment variable) holding the device's description.
	DescriptionProperty = "DEBUG_ECHO_DESCRIPTION"
	// SharedEnv names the environment variable ("true" or "false") saying
	// whether the devices are shared between nodes.
	SharedEnv = "DEBUG_ECHO_INSTANCES_SHARED"
	// DefaultAvailabilityFile is the file whose content decides whether the
	// devices are online.
	DefaultAvailabilityFile = "/tmp/debug-echo-availability.txt"
	// Offline, found in the availability file, takes every device offline.
	Offline = "OFFLINE"
	// DefaultPollInterval is how often Watch reads the availability file.
	DefaultPollInterval = time.Second
)

// ErrInvalidDetails is wrapped by every error of ParseDetails. It has the
// InvalidParameter marker method of the errdefs invalid-argument class, so
// errdefs.IsInvalidArgument reports it and DH servers (proto/discoveryhandler)
// answer with the InvalidArgument status, as upstream does.
var ErrInvalidDetails error = invalidDetails{}

type invalidDetails struct{}

func (invalidDetails) Error() string     { return "invalid debugEcho discovery details" }
func (invalidDetails) InvalidParameter() {}

// Details are debugEcho's discoveryDetails.
type Details struct {
	// Descriptions lists the devices to discover, one per description.
	Descriptions []string `yaml:"descriptions"`
}

// ParseDetails parses discoveryDetails, a YAML (or JSON) mapping with a
// descriptions list. As upstream's parser does, it rejects an empty document
// and a missing descriptions, accepts an empty list and ignores other keys; it
// also rejects a null descriptions and more than one document, and takes list
// items such as 1 or true as their text. Errors wrap ErrInvalidDetails.
func ParseDetails(details string) (Details, error) {
	dec := yaml.NewDecoder(strings.NewReader(details))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Details{}, fmt.Errorf("%w: empty document", ErrInvalidDetails)
		}
		return Details{}, fmt.Errorf("%w: %v", ErrInvalidDetails, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Details{}, fmt.Errorf("%w: more than one YAML document", ErrInvalidDetails)
	}
	var raw struct {
		Descriptions *[]string `yaml:"descriptions"`
	}
	if err := doc.Decode(&raw); err != nil {
		return Details{}, fmt.Errorf("%w: %v", ErrInvalidDetails, err)
	}
	if raw.Descriptions == nil {
		return Details{}, fmt.Errorf("%w: descriptions is required", ErrInvalidDetails)
	}
	for _, d := range *raw.Descriptions {
		// A description becomes a device ID and property value: protobuf
		// strings, which must be UTF-8 (a !!binary scalar need not be).
		if !utf8.ValidString(d) {
			return Details{}, fmt.Errorf("%w: description %q is not UTF-8 text", ErrInvalidDetails, d)
		}
	}
	return Details{Descriptions: *raw.Descriptions}, nil
}

// Device is a discovered debugEcho device, independent of any transport.
type Device struct {
	ID         string
	Properties map[string]string
}

// Devices returns the devices of descriptions: one per description, in order,
// when online, and none otherwise. The result is never nil.
func Devices(descriptions []string, online bool) []Device {
	devs := []Device{}
	if !online {
		return devs
	}
	for _, d := range descriptions {
		devs = append(devs, Device{ID: d, Properties: map[string]string{DescriptionProperty: d}})
	}
	return devs
}

// Available reports whether the devices are online: whether the availability
// file at path does not contain Offline. A missing or unreadable file means
// online, as upstream reads it.
func Available(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	return !bytes.Contains(b, []byte(Offline))
}

// WatchOptions configures Watch. The zero value means the defaults.
type WatchOptions struct {
	// AvailabilityFile is read on every poll. If empty,
	// DefaultAvailabilityFile is used.
	AvailabilityFile string
	// PollInterval is the time between reads. If zero, DefaultPollInterval is
	// used.
	PollInterval time.Duration
}

// Watch sends the devices of descriptions with send at once, then again each
// time the availability file turns them offline or back online, until ctx
// ends (it returns ctx.Err()) or send fails (it returns that error).
func Watch(ctx context.Context, descriptions []string, opts WatchOptions, send func([]Device) error) error {
	if opts.AvailabilityFile == "" {
		opts.AvailabilityFile = DefaultAvailabilityFile
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	online := Available(opts.AvailabilityFile)
	if err := send(Devices(descriptions, online)); err != nil {
		return err
	}
	tick := time.NewTicker(opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if now := Available(opts.AvailabilityFile); now != online {
			online = now
			if err := send(Devices(descriptions, online)); err != nil {
				return err
			}
		}
	}
}
