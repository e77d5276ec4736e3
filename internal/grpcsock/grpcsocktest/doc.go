// Package grpcsocktest checks, from a component's own tests, the start/stop
// contract of a server built on grpcsock.Endpoint (the CRI endpoint, the
// PodResources API): a second Start is refused naming the component, Stop
// removes the socket and may be repeated, and a stopped server starts again.
package grpcsocktest
