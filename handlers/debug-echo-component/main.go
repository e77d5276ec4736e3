// Command debug-echo-component is the debugEcho discovery handler as a
// component of the akri:discovery@0.1.0 world, hosted in-process by the
// agent (no proxy, no files exchanged): the same semantics as the gRPC
// handler (handlers/debugecho) — discoveryDetails `descriptions: [...]`,
// one device per description with property DEBUG_ECHO_DESCRIPTION, none
// while /tmp/debug-echo-availability.txt (in the directory the agent
// preopens as /tmp) holds OFFLINE. Invalid details are an error.
package main

import (
	"time"

	"github.com/wasilet/wasilet/handlers/debugecho"
	"github.com/wasilet/wasilet/handlers/internal/akriguest"
)

// pollInterval is how often Watch reads the availability file.
const pollInterval = 100 * time.Millisecond

type handler struct {
	// last is what the previous Watch returned ("" before the first).
	last string
}

func devices(details string) ([]akriguest.Device, string, error) {
	d, err := debugecho.ParseDetails(details)
	if err != nil {
		return nil, "", err
	}
	online := debugecho.Available(debugecho.DefaultAvailabilityFile)
	var out []akriguest.Device
	key := "offline"
	if online {
		key = "online"
	}
	for _, dev := range debugecho.Devices(d.Descriptions, online) {
		out = append(out, akriguest.Device{ID: dev.ID, Properties: [][2]string{{debugecho.DescriptionProperty, dev.Properties[debugecho.DescriptionProperty]}}})
	}
	return out, key + "\x00" + details, nil
}

func (h *handler) Discover(details string, _ []akriguest.Property) ([]akriguest.Device, error) {
	devs, _, err := devices(details)
	return devs, err
}

func (h *handler) Watch(details string, _ []akriguest.Property, deadline time.Duration) ([]akriguest.Device, error) {
	end := time.Now().Add(deadline)
	for {
		devs, key, err := devices(details)
		if err != nil {
			return nil, err
		}
		if key != h.last || !time.Now().Before(end) {
			h.last = key
			return devs, nil
		}
		time.Sleep(min(pollInterval, time.Until(end)))
	}
}

func init() { akriguest.Serve(&handler{}) }

func main() {}
