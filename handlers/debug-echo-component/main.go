package main

import (
	"time"

	"github.com/wasilet/wasilet/handlers/internal/akriguest"
)

type h struct{}

func (h) Discover(details string, _ []akriguest.Property) ([]akriguest.Device, error) {
	return []akriguest.Device{{ID: details, Properties: [][2]string{{"DEBUG_ECHO_DESCRIPTION", details}}}}, nil
}

func (h) Watch(details string, _ []akriguest.Property, d time.Duration) ([]akriguest.Device, error) {
	time.Sleep(d)
	return []akriguest.Device{{ID: details}}, nil
}

func init() { akriguest.Serve(h{}) }

func main() {}
