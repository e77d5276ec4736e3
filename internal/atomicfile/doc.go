// Package atomicfile owns replacing a small file in one step: WriteFile
// writes the new content to a temporary file beside the target and renames
// it over the target, so readers see the old or the new content, never a
// mix, and a killed process leaves one of them. It does not fsync; callers
// that must survive a machine crash (device-manager checkpoints, the
// compiled-module cache) keep their own syncing writers. SetAside moves a
// file that could not be read out of the way, keeping it for inspection.
// ProbeWritable tells whether a directory takes a new file (health checks).
package atomicfile
