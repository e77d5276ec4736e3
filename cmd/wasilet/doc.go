// Command wasilet is the one binary of the project: a Kubernetes node that runs
// WebAssembly pods, its Akri agent, controller and proxy, and the developer
// verbs push, pull and run. Each subcommand lives in its own file and is a thin
// layer over a package API.
package main
