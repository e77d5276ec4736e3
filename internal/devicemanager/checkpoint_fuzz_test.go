package devicemanager

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/types"
)

// A checkpoint as wasilet writes it: one container with one device, its
// allocation response (envs A=1) in protobuf wire form, and the resource.
const fuzzCheckpointData = `{"PodDeviceEntries":[{"PodUID":"u1","PodNamespace":"default","PodName":"p","ContainerName":"c","ResourceName":"example.com/dev","DeviceIDs":["d0"],"AllocResp":"CgYKAUESATE="}],"RegisteredDevices":{"example.com/dev":["d0","d1"]}}`

// FuzzReadCheckpoint: the bytes of a checkpoint file are refused with an
// error that names the file and says what is wrong (never "no checkpoint"),
// or give data that, written again, read back to the same data.
func FuzzReadCheckpoint(f *testing.F) {
	var d checkpointData
	if err := json.Unmarshal([]byte(fuzzCheckpointData), &d); err != nil {
		f.Fatal(err)
	}
	sum, err := checksum(d)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := json.Marshal(checkpointFile{Data: d, Checksum: sum})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(append(valid[:len(valid)-2:len(valid)-2], '7', '}')) // another checksum
	f.Add([]byte(`{"Data":{},"Checksum":1}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, CheckpointFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := readCheckpoint(path)
		if err != nil {
			if errors.Is(err, errNoCheckpoint) || !strings.Contains(err.Error(), path+": ") {
				t.Fatalf("readCheckpoint(%q): error %q does not name the file and the problem", b, err)
			}
			return
		}
		again := filepath.Join(dir, "again")
		if err := writeCheckpoint(again, d); err != nil {
			t.Fatalf("writeCheckpoint of %+v (from %q): %v", d, b, err)
		}
		if d2, err := readCheckpoint(again); err != nil || !reflect.DeepEqual(d2, d) {
			t.Fatalf("checkpoint %q read as %+v; written and read again: %+v, %v", b, d, d2, err)
		}
	})
}

// FuzzRestoreCheckpoint: any checkpoint data with a good checksum (the
// input is the "Data" object; the target seals it) is restored without
// panicking, the manager can report its resources and pods, and the
// checkpoint it writes next restores to the same pods and resources.
func FuzzRestoreCheckpoint(f *testing.F) {
	f.Add([]byte(fuzzCheckpointData))
	f.Add([]byte(`{"PodDeviceEntries":[{"PodUID":"u1","ContainerName":"c","ResourceName":"example.com/dev","DeviceIDs":["d0"],"AllocResp":"/w=="}],"RegisteredDevices":{}}`))
	f.Add([]byte(`{"PodDeviceEntries":null,"RegisteredDevices":{"example.com/dev":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d checkpointData
		if json.Unmarshal(data, &d) != nil {
			return
		}
		dir := t.TempDir()
		if err := writeCheckpoint(filepath.Join(dir, CheckpointFile), d); err != nil {
			t.Fatalf("writeCheckpoint(%+v): %v", d, err)
		}
		m := restoredManager(t, dir)
		m.Resources()
		for _, uid := range m.AllocatedPods() {
			for c := range m.pods[uid].containers {
				m.ContainerDevices(uid, c)
			}
		}
		m.mu.Lock()
		m.checkpointLocked()
		m.mu.Unlock()
		m2 := restoredManager(t, dir)
		if a, b := slices.Sorted(maps.Keys(m.resources)), slices.Sorted(maps.Keys(m2.resources)); !slices.Equal(a, b) {
			t.Fatalf("checkpoint %s: resources %q, after a checkpoint and a restore %q", data, a, b)
		}
		if !samePods(m.pods, m2.pods) {
			t.Fatalf("checkpoint %s: pods differ after a checkpoint and a restore", data)
		}
	})
}

// restoredManager returns a manager (not started) of dir restored from its
// checkpoint, with its timers stopped at the end of the test.
func restoredManager(t *testing.T, dir string) *Manager {
	t.Helper()
	m, err := New(Options{Dir: dir, StopGracePeriod: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tm := range m.timers {
			tm.Stop()
		}
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.restoreLocked(); err != nil {
		t.Fatalf("restore a checkpoint with a good checksum: %v", err)
	}
	return m
}

func samePods(a, b map[types.UID]*podAllocation) bool {
	if len(a) != len(b) {
		return false
	}
	for uid, pa := range a {
		pb := b[uid]
		if pb == nil || pa.namespace != pb.namespace || pa.name != pb.name || len(pa.containers) != len(pb.containers) {
			return false
		}
		for c, ra := range pa.containers {
			rb := pb.containers[c]
			if len(ra) != len(rb) {
				return false
			}
			for res, ea := range ra {
				eb := rb[res]
				if eb == nil || !slices.Equal(ea.ids, eb.ids) || !proto.Equal(ea.resp, eb.resp) {
					return false
				}
			}
		}
	}
	return true
}
