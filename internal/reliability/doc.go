// Package reliability owns the fault suite's record: each end-to-end fault
// scenario (a node killed with pods running, a registry outage, a full
// disk, …) says what it did, what was kept and what it measured through
// Record, which appends to the file named by $WASILET_RELIABILITY_REPORT
// when set. `just reliability` runs the scenarios and renders the records
// with Render into docs/reliability.md. The scenarios themselves are the
// tests of this package and of the packages whose faults they exercise.
package reliability
