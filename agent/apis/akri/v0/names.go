package v0

import (
	"encoding/hex"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// DeviceHash is Akri's 6-hex-digit device digest: BLAKE2b with a 3-byte
// output over the device id (shared devices) or the id followed directly by
// the node name (unshared devices, so each node has its own Instance).
func DeviceHash(id string, shared bool, node string) string {
	h, err := blake2b.New(3, nil)
	if err != nil {
		panic(err) // 3 is a valid size; unreachable
	}
	h.Write([]byte(id))
	if !shared {
		h.Write([]byte(node))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// InstanceName is <configuration>-<hash>, the name of the Instance of a
// device (dots in the Configuration name become dashes in broker names, not
// here).
func InstanceName(configuration, id string, shared bool, node string) string {
	return configuration + "-" + DeviceHash(id, shared, node)
}

// CDIName is akri.sh/<configuration>=<hash>, the CDI device name Akri gives
// an Instance.
func CDIName(configuration, hash string) string {
	return GroupName + "/" + configuration + "=" + hash
}

// ResourceName is the extended resource of an Instance or a Configuration,
// akri.sh/<name>.
func ResourceName(name string) string { return GroupName + "/" + name }

// EnvSuffix is the suffix Akri appends to each property for the
// hash-qualified copy of a broker's environment: the upper-cased hash, e.g.
// DEBUG_ECHO_DESCRIPTION_8120FE for hash 8120fe.
func EnvSuffix(hash string) string { return "_" + strings.ToUpper(hash) }

// InstanceHash returns the hash part of an Instance name of the given
// Configuration ("" when the name is not <configuration>-<6 hex digits>).
func InstanceHash(configuration, instance string) string {
	rest, ok := strings.CutPrefix(instance, configuration+"-")
	if !ok || len(rest) != 6 {
		return ""
	}
	if _, err := hex.DecodeString(rest); err != nil {
		return ""
	}
	return rest
}
