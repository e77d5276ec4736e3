package debugecho_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wasilet/wasilet/handlers/debugecho"
)

func TestParseDetails(t *testing.T) {
	tests := []struct {
		name    string
		details string
		want    []string
		wantErr bool
	}{
		{name: "empty list", details: "descriptions: []", want: []string{}},
		{name: "flow list", details: "descriptions: [foo0, foo1]", want: []string{"foo0", "foo1"}},
		// The form of upstream's test: indented, with quoted items.
		{name: "indented block", details: "\n            descriptions:\n              - \"foo1\"\n        ", want: []string{"foo1"}},
		// What a Configuration's `discoveryDetails: |+` block hands over.
		{name: "block with trailing newlines", details: "descriptions:\n- bar0\n- bar1\n\n", want: []string{"bar0", "bar1"}},
		{name: "json", details: `{"descriptions":["foo0"]}`, want: []string{"foo0"}},
		{name: "other keys ignored", details: "descriptions: [a]\nextra: 1", want: []string{"a"}},
		{name: "scalars as text", details: "descriptions: [1, true]", want: []string{"1", "true"}},
		{name: "comment", details: "# devices\ndescriptions: [a] # one", want: []string{"a"}},

		{name: "empty", details: "", wantErr: true},
		{name: "blank", details: "  \n\t\n", wantErr: true},
		{name: "missing descriptions", details: "foo: [a]", wantErr: true},
		{name: "null descriptions", details: "descriptions: ~", wantErr: true},
		{name: "not a list", details: "descriptions: foo", wantErr: true},
		{name: "nested list", details: "descriptions: [[a]]", wantErr: true},
		{name: "top-level list", details: "[a, b]", wantErr: true},
		{name: "bad yaml", details: "descriptions: [", wantErr: true},
		{name: "two documents", details: "descriptions: []\n---\ndescriptions: [a]", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := debugecho.ParseDetails(tt.details)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDetails(%q) = %v, want an error", tt.details, got)
				}
				if !errors.Is(err, debugecho.ErrInvalidDetails) {
					t.Errorf("error %v does not wrap ErrInvalidDetails", err)
				}
				var marked interface{ InvalidParameter() }
				if !errors.As(err, &marked) {
					t.Errorf("error %v is not of the invalid-argument class", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDetails(%q): %v", tt.details, err)
			}
			if !reflect.DeepEqual(got.Descriptions, tt.want) {
				t.Errorf("ParseDetails(%q) = %#v, want %#v", tt.details, got.Descriptions, tt.want)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	got := debugecho.Devices([]string{"foo0", "foo1"}, true)
	want := []debugecho.Device{
		{ID: "foo0", Properties: map[string]string{"DEBUG_ECHO_DESCRIPTION": "foo0"}},
		{ID: "foo1", Properties: map[string]string{"DEBUG_ECHO_DESCRIPTION": "foo1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("online: %v, want %v", got, want)
	}
	if got := debugecho.Devices([]string{"foo0"}, false); got == nil || len(got) != 0 {
		t.Errorf("offline: %#v, want an empty list", got)
	}
	if got := debugecho.Devices(nil, true); got == nil || len(got) != 0 {
		t.Errorf("no descriptions: %#v, want an empty list", got)
	}
}

func TestAvailable(t *testing.T) {
	dir := t.TempDir()
	if !debugecho.Available(filepath.Join(dir, "missing")) {
		t.Error("missing file: offline, want online")
	}
	for content, want := range map[string]bool{
		"":             true,
		"ONLINE":       true,
		"offline":      true, // case matters, as upstream
		"OFFLINE":      false,
		"OFFLINE\n":    false,
		"  OFFLINE  ":  false,
		"now OFFLINE!": false, // upstream looks for the word anywhere
	} {
		p := filepath.Join(dir, "availability")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := debugecho.Available(p); got != want {
			t.Errorf("Available with %q = %v, want %v", content, got, want)
		}
	}
}

func TestWatch(t *testing.T) {
	file := filepath.Join(t.TempDir(), "availability")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan []debugecho.Device, 8)
	done := make(chan error, 1)
	go func() {
		done <- debugecho.Watch(ctx, []string{"foo0"}, debugecho.WatchOptions{AvailabilityFile: file, PollInterval: 10 * time.Millisecond},
			func(d []debugecho.Device) error { updates <- d; return nil })
	}()
	next := func(wantLen int) {
		t.Helper()
		select {
		case d := <-updates:
			if len(d) != wantLen {
				t.Fatalf("update with %d devices, want %d", len(d), wantLen)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
		}
	}
	quiet := func() {
		t.Helper()
		select {
		case d := <-updates:
			t.Fatalf("update %v without a change", d)
		case <-time.After(100 * time.Millisecond):
		}
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	next(1) // at once, the file being absent
	quiet()
	write("OFFLINE\n")
	next(0)
	quiet()
	write("")
	next(1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v, want context.Canceled", err)
	}
}

func TestWatchSendError(t *testing.T) {
	boom := errors.New("stream gone")
	err := debugecho.Watch(context.Background(), nil, debugecho.WatchOptions{AvailabilityFile: filepath.Join(t.TempDir(), "x")},
		func([]debugecho.Device) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Watch = %v, want %v", err, boom)
	}
}

func ExampleParseDetails() {
	d, err := debugecho.ParseDetails("descriptions:\n- foo0\n- foo1\n")
	if err != nil {
		panic(err)
	}
	for _, dev := range debugecho.Devices(d.Descriptions, true) {
		fmt.Println(dev.ID, dev.Properties[debugecho.DescriptionProperty])
	}
	_, err = debugecho.ParseDetails("descriptions: foo")
	fmt.Println(errors.Is(err, debugecho.ErrInvalidDetails))
	// Output:
	// foo0 foo0
	// foo1 foo1
	// true
}
