package devicemanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
)

// CheckpointFile is the file name of the allocation checkpoint (the
// kubelet's name; the content is wasilet's own JSON).
const CheckpointFile = "kubelet_internal_checkpoint"

// checkpointEntry is one container's devices for one resource.
type checkpointEntry struct {
	PodUID        string
	PodNamespace  string `json:",omitempty"`
	PodName       string `json:",omitempty"`
	ContainerName string
	ResourceName  string
	DeviceIDs     []string
	// AllocResp is the plugin's ContainerAllocateResponse in protobuf wire form.
	AllocResp []byte
}

type checkpointData struct {
	PodDeviceEntries []checkpointEntry
	// RegisteredDevices lists the healthy devices per resource; a resource
	// listed here is known (capacity 0) after a restart until its plugin
	// re-registers or the grace period ends.
	RegisteredDevices map[string][]string
}

type checkpointFile struct {
	Data     checkpointData
	Checksum uint64
}

func checksum(d checkpointData) (uint64, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64(), nil
}

// writeCheckpoint stores d at path atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeCheckpoint(path string, d checkpointData) (retErr error) {
	sum, err := checksum(d)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	b, err := json.Marshal(checkpointFile{Data: d, Checksum: sum})
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close checkpoint %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// errNoCheckpoint is returned by readCheckpoint when there is none yet.
var errNoCheckpoint = errors.New("no checkpoint")

// readCheckpoint loads and verifies the checkpoint at path.
func readCheckpoint(path string) (checkpointData, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return checkpointData{}, errNoCheckpoint
	}
	if err != nil {
		return checkpointData{}, fmt.Errorf("read checkpoint: %w", err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return checkpointData{}, fmt.Errorf("read checkpoint %s: corrupt: %w", path, err)
	}
	sum, err := checksum(f.Data)
	if err != nil {
		return checkpointData{}, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	if sum != f.Checksum {
		return checkpointData{}, fmt.Errorf("read checkpoint %s: checksum mismatch (stored %d, computed %d): the file is corrupt", path, f.Checksum, sum)
	}
	return f.Data, nil
}
