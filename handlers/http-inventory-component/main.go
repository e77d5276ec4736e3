// Command http-inventory-component is a discovery handler component that
// asks an HTTP endpoint for its device list through the world's http import
// (the agent lets it reach only the hosts it was granted). discoveryDetails:
//
//	url: http://inventory.local:8080/devices
//
// The endpoint answers 200 with JSON
// {"devices":[{"id":"…","properties":{"K":"V"}}]}; any other answer is a
// discovery error. Watch asks again every second and returns when the list
// changes or at the deadline.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wasilet/wasilet/handlers/internal/akriguest"
)

const pollInterval = time.Second

type details struct {
	URL string `yaml:"url"`
}

type inventory struct {
	Devices []struct {
		ID         string            `json:"id"`
		Properties map[string]string `json:"properties"`
	} `json:"devices"`
}

func fetch(raw string) ([]akriguest.Device, string, error) {
	var d details
	if err := yaml.Unmarshal([]byte(raw), &d); err != nil {
		return nil, "", fmt.Errorf("invalid discoveryDetails: %v", err)
	}
	if d.URL == "" {
		return nil, "", errors.New("invalid discoveryDetails: url is required")
	}
	r, err := akriguest.HTTPGet(d.URL)
	if err != nil {
		return nil, "", err
	}
	if r.Status != 200 {
		return nil, "", fmt.Errorf("GET %s: status %d", d.URL, r.Status)
	}
	var inv inventory
	if err := json.Unmarshal(r.Body, &inv); err != nil {
		return nil, "", fmt.Errorf("GET %s: %v", d.URL, err)
	}
	devs := make([]akriguest.Device, 0, len(inv.Devices))
	for _, x := range inv.Devices {
		keys := make([]string, 0, len(x.Properties))
		for k := range x.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dev := akriguest.Device{ID: x.ID}
		for _, k := range keys {
			dev.Properties = append(dev.Properties, [2]string{k, x.Properties[k]})
		}
		devs = append(devs, dev)
	}
	return devs, string(r.Body), nil
}

type handler struct{ last *string }

func (h *handler) Discover(raw string, _ []akriguest.Property) ([]akriguest.Device, error) {
	devs, _, err := fetch(raw)
	return devs, err
}

func (h *handler) Watch(raw string, _ []akriguest.Property, deadline time.Duration) ([]akriguest.Device, error) {
	end := time.Now().Add(deadline)
	for {
		devs, key, err := fetch(raw)
		if err != nil {
			return nil, err
		}
		if h.last == nil || *h.last != key || !time.Now().Before(end) {
			h.last = &key
			return devs, nil
		}
		time.Sleep(min(pollInterval, time.Until(end)))
	}
}

func init() { akriguest.Serve(&handler{}) }

func main() {}
